//! Prints Taskyard's CustomResourceDefinitions as one multi-document YAML stream.
//! `crds/taskyard.yaml` and the chart's copy are generated with it (`make crds` does both).

fn main() {
    print!("{}", taskyard_api::crds_yaml());
}
