fn main() {
    eprintln!("wippy: under construction");
    std::process::exit(1);
}
