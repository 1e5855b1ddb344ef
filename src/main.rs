//! `nabla`: train, evaluate and query MNIST classifiers on the GPU (or the CPU). The commands live in
//! `src/cli/`, one file each.

mod cli;

fn main() {
    cli::main();
}
