//! The committed CRD YAML must be what the code generates: regenerate with `make crds`.

use std::path::Path;

fn committed(path: &str) -> String {
    // Read at run time: a shared target directory may hold a binary compiled in another checkout.
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run the tests with cargo test");
    let full = Path::new(&crate_dir).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

#[test]
fn committed_crds_match_the_code() {
    let generated = taskyard_api::crds_yaml();
    for path in ["crds/taskyard.yaml", "charts/taskyard/crds/taskyard.yaml"] {
        assert!(
            committed(path) == generated,
            "{path} differs from the CRDs the code generates; run `make crds` and commit the result"
        );
    }
}

#[test]
fn every_kind_is_in_the_taskyard_category_with_its_short_name() {
    let crds = taskyard_api::crds();
    let names: Vec<_> = crds
        .iter()
        .map(|c| {
            (
                c.spec.names.kind.as_str(),
                c.spec.names.short_names.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("HashTask", vec!["hashtask".to_string()]),
            ("ImageTask", vec!["imgtask".to_string()]),
            ("TextTask", vec!["txttask".to_string()])
        ]
    );
    for crd in &crds {
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["taskyard".to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.to_uppercase())
            .collect();
        assert_eq!(columns.first().map(String::as_str), Some("PHASE"));
        assert_eq!(columns.last().map(String::as_str), Some("AGE"));
    }
}

#[test]
fn no_cel_rules_so_the_crds_install_on_kubernetes_1_20() {
    assert!(!taskyard_api::crds_yaml().contains("x-kubernetes-validations"));
}
