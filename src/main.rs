//! The `wippy` binary: see [`wippy::cli`].

fn main() {
    let code = wippy::cli::main();
    std::process::exit(code);
}
