//! The `wippy` binary: see [`wippy::cli`].

/// mimalloc as the global allocator (Lua states allocate through it too, via mlua): per-thread
/// free lists make the cross-worker frees of migrating processes cheap, where glibc malloc
/// serialises them on the owning arena's lock (decision 0034).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = wippy::cli::main();
    std::process::exit(code);
}
