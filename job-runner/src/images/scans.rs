//! Progressive JPEGs decoded at 1/8 scale, without the scans that cannot show.
//!
//! At 1/8 libjpeg-turbo turns each 8x8 block into one pixel from its DC coefficient alone
//! wherever a component's scaled IDCT is 1x1 (the luma always; chroma unless it is 4:2:0
//! subsampled), yet it entropy-decodes every AC scan first, and those are most of a
//! progressive file. `for_eighth_scale` copies the file without them, so the decode does a
//! fraction of the work and gives the same pixels.
//!
//! One AC scan of each such component stays: with none, libjpeg-turbo takes the component
//! for one still loading and smooths its DC values (`change_dc` in jdcoefct.c), which would
//! blur the thumbnail. It keeps the component's first scan of coefficients among 1..=9 (the
//! ones that check reads) and drops the rest, refinements included.

/// The most of the input the copy may take: beyond that it saves too little to be worth
/// the memory.
const MOST_KEPT: f64 = 0.5;
/// The most the copy may take per pixel of the image, whatever the file's size: the memory
/// budget (`decode::work_bytes`) counts this much for it.
pub const MOST_BYTES_PER_PIXEL: f64 = 0.75;

const SOF2: u8 = 0xC2;
const SOS: u8 = 0xDA;
const EOI: u8 = 0xD9;

/// The file without the AC scans a 1/8 decode cannot see, or `None` when it is not a
/// progressive Huffman JPEG, nothing can go, or it does not parse (the caller then decodes
/// the file as it is, and libjpeg-turbo judges it).
pub fn for_eighth_scale(jpeg: &[u8]) -> Option<Vec<u8>> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    kept.push(0..2); // SOI
    let mut dc_only: Option<Vec<u8>> = None;
    let mut pixels = 0f64;
    let mut has_ac_scan: Vec<u8> = Vec::new();
    let mut dropped = false;
    let mut pos = 2;
    loop {
        let (code, after_marker) = marker_at(jpeg, pos)?;
        if code == EOI {
            break;
        }
        if matches!(code, 0x00 | 0x01 | 0xD0..=0xD8) {
            return None;
        }
        let len = u16::from_be_bytes([*jpeg.get(after_marker)?, *jpeg.get(after_marker + 1)?]) as usize;
        let body = jpeg.get(after_marker + 2..after_marker + len.checked_sub(2)? + 2)?;
        let end = after_marker + len;
        match code {
            SOF2 => {
                dc_only = Some(components_at_1x1(body)?);
                let side = |at: usize| Some(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as f64);
                pixels = side(1)? * side(3)?;
                kept.push(pos..end);
            }
            // Any other frame type: not a progressive Huffman JPEG.
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => return None,
            SOS => {
                let one_by_one = dc_only.as_ref()?;
                let scan_end = entropy_end(jpeg, end)?;
                let scan = Scan::parse(body)?;
                let keep = match scan.only_component {
                    Some(c) if scan.first_coefficient > 0 && one_by_one.contains(&c) => {
                        let smoothing_reads_it = scan.first_coefficient <= 9 && scan.refines == 0;
                        let first = smoothing_reads_it && !has_ac_scan.contains(&c);
                        if first {
                            has_ac_scan.push(c);
                        }
                        first
                    }
                    _ => true,
                };
                if keep {
                    kept.push(pos..scan_end);
                } else {
                    dropped = true;
                }
                pos = scan_end;
                continue;
            }
            // Metadata no decoder reads (EXIF, ICC, XMP, comments); JFIF (APP0) and Adobe
            // (APP14) say how to read the colours and stay.
            0xE1..=0xED | 0xEF | 0xFE => {}
            _ => kept.push(pos..end),
        }
        pos = end;
    }
    let size: usize = kept.iter().map(|r| r.len()).sum::<usize>() + 2;
    let most = f64::min(jpeg.len() as f64 * MOST_KEPT, pixels * MOST_BYTES_PER_PIXEL);
    if !dropped || size as f64 > most {
        return None;
    }
    let mut out = Vec::with_capacity(size);
    for range in kept {
        out.extend_from_slice(&jpeg[range]);
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Some(out)
}

/// The marker code at `pos` (after any fill bytes) and where its segment continues.
fn marker_at(jpeg: &[u8], pos: usize) -> Option<(u8, usize)> {
    if *jpeg.get(pos)? != 0xFF {
        return None;
    }
    let mut at = pos + 1;
    while *jpeg.get(at)? == 0xFF {
        at += 1;
    }
    Some((jpeg[at], at + 1))
}

/// Where the entropy-coded data starting at `from` ends: at the first marker that is not a
/// stuffed zero or a restart marker.
fn entropy_end(jpeg: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let ff = from + memchr::memchr(0xFF, jpeg.get(from..)?)?;
        let mut next = ff + 1;
        while *jpeg.get(next)? == 0xFF {
            next += 1;
        }
        match jpeg[next] {
            0x00 | 0xD0..=0xD7 => from = next + 1,
            _ => return Some(ff),
        }
    }
}

/// The ids of the components libjpeg-turbo decodes with a 1x1 IDCT at 1/8 scale. It scales
/// a subsampled component's IDCT up instead of upsampling it where the factors allow
/// (jdmaster.c, `master_selection`); this is that rule at the smallest scaled size, 1.
fn components_at_1x1(sof: &[u8]) -> Option<Vec<u8>> {
    let count = *sof.get(5)? as usize;
    let components: Vec<(u8, u32, u32)> = (0..count)
        .map(|i| {
            let c = sof.get(6 + 3 * i..9 + 3 * i)?;
            let (h, v) = ((c[1] >> 4) as u32, (c[1] & 15) as u32);
            (1..=4).contains(&h).then_some(())?;
            (1..=4).contains(&v).then_some(())?;
            Some((c[0], h, v))
        })
        .collect::<Option<_>>()?;
    let max_h = components.iter().map(|c| c.1).max()?;
    let max_v = components.iter().map(|c| c.2).max()?;
    Some(
        components
            .iter()
            .filter(|(_, h, v)| max_h % (h * 2) != 0 || max_v % (v * 2) != 0)
            .map(|c| c.0)
            .collect(),
    )
}

struct Scan {
    /// The component of a one-component scan (every AC scan has one).
    only_component: Option<u8>,
    /// Ss: 0 for a DC scan.
    first_coefficient: u8,
    /// Ah: 0 for a first pass, else the bit position a refinement builds on.
    refines: u8,
}

impl Scan {
    fn parse(sos: &[u8]) -> Option<Scan> {
        let count = *sos.first()? as usize;
        let tail = sos.get(1 + 2 * count..4 + 2 * count)?;
        Some(Scan {
            only_component: (count == 1).then_some(sos[1]),
            first_coefficient: tail[0],
            refines: tail[2] >> 4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

    /// A photo-like picture (gradients under noise) as a progressive JPEG.
    fn progressive(w: usize, h: usize, subsamp: Subsamp) -> Vec<u8> {
        let mut seed = 7u32;
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let base = (x * 255 / w + y * 255 / h + c * 60) / 2;
                    rgb.push((base as u32 + (seed >> 27)).min(255) as u8);
                }
            }
        }
        let mut c = Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        c.set_subsamp(subsamp).unwrap();
        c.set_progressive(true).unwrap();
        c.compress_to_vec(Image {
            pixels: rgb.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: PixelFormat::RGB,
        })
        .unwrap()
    }

    fn decode_eighth(jpeg: &[u8]) -> Vec<u8> {
        let mut d = Decompressor::new().unwrap();
        let header = d.read_header(jpeg).unwrap();
        let factor = ScalingFactor::new(1, 8);
        d.set_scaling_factor(factor).unwrap();
        let scaled = header.scaled(factor);
        let mut pixels = vec![0u8; scaled.width * scaled.height * 3];
        let image = Image {
            pixels: pixels.as_mut_slice(),
            width: scaled.width,
            pitch: scaled.width * 3,
            height: scaled.height,
            format: PixelFormat::RGB,
        };
        d.decompress(jpeg, image).expect("decodes without a warning");
        pixels
    }

    #[test]
    fn the_same_pixels_from_a_fraction_of_the_file() {
        for subsamp in [Subsamp::None, Subsamp::Sub2x1, Subsamp::Sub2x2, Subsamp::Gray] {
            let file = progressive(640, 480, subsamp);
            let pruned = for_eighth_scale(&file).expect("AC scans to drop");
            assert!(
                pruned.len() * 2 < file.len(),
                "{subsamp:?}: {} of {} bytes",
                pruned.len(),
                file.len()
            );
            assert_eq!(decode_eighth(&pruned), decode_eighth(&file), "{subsamp:?}");
        }
    }

    #[test]
    fn luma_always_and_chroma_unless_4_2_0_decode_at_1x1() {
        let sof = |comps: &[(u8, u8)]| {
            let mut b = vec![8, 0, 64, 0, 64, comps.len() as u8];
            for (id, hv) in comps {
                b.extend([*id, *hv, 0]);
            }
            b
        };
        assert_eq!(
            components_at_1x1(&sof(&[(1, 0x22), (2, 0x11), (3, 0x11)])),
            Some(vec![1])
        );
        assert_eq!(
            components_at_1x1(&sof(&[(1, 0x21), (2, 0x11), (3, 0x11)])),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            components_at_1x1(&sof(&[(1, 0x11), (2, 0x11), (3, 0x11)])),
            Some(vec![1, 2, 3])
        );
        assert_eq!(components_at_1x1(&sof(&[(1, 0x11)])), Some(vec![1]));
        assert_eq!(components_at_1x1(&sof(&[(1, 0x01)])), None, "a zero sampling factor");
    }

    #[test]
    fn baseline_and_broken_files_are_left_alone() {
        let mut c = Compressor::new().unwrap();
        c.set_quality(80).unwrap();
        let rgb = vec![90u8; 64 * 64 * 3];
        let baseline = c
            .compress_to_vec(Image {
                pixels: rgb.as_slice(),
                width: 64,
                pitch: 192,
                height: 64,
                format: PixelFormat::RGB,
            })
            .unwrap();
        assert_eq!(for_eighth_scale(&baseline), None);
        assert_eq!(for_eighth_scale(b"not a jpeg"), None);
        // Cut anywhere, or a byte changed anywhere: no panic, and a cut file stays whole.
        let file = progressive(96, 64, Subsamp::Sub2x2);
        for cut in 0..file.len() - 2 {
            assert_eq!(for_eighth_scale(&file[..cut]), None, "cut at {cut}");
        }
        for at in 0..file.len() {
            let mut bent = file.clone();
            bent[at] ^= 0x5A;
            let _ = for_eighth_scale(&bent);
        }
    }
}
