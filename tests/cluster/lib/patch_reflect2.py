"""Patch vendored reflect2 v1.0.1 for Go >= 1.18 (the change reflect2 v1.0.2 made).

Go 1.18 changed reflect.mapiterinit to fill a caller-allocated iterator instead of returning
one, and the runtime writes the whole hiter struct, so ours must have the full layout.
"""
import pathlib
import sys

root = pathlib.Path(sys.argv[1])

FULL_HITER = """type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}"""


def replace_once(path, old, new):
    text = path.read_text()
    if new in text:
        return
    if text.count(old) != 1:
        sys.exit(f"patch_reflect2: expected one occurrence in {path} of: {old[:60]!r}")
    path.write_text(text.replace(old, new))


link = root / "unsafe_link.go"
replace_once(
    link,
    "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) *hiter",
    "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)",
)
text = link.read_text()
start = text.index("type hiter struct {")
end = text.index("}", start) + 1
link.write_text(text[:start] + FULL_HITER + text[end:])

replace_once(
    root / "unsafe_map.go",
    """	return &UnsafeMapIterator{
		hiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),""",
    """	var it hiter
	mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)
	return &UnsafeMapIterator{
		hiter:      &it,""",
)
print("patched reflect2 in", root)
