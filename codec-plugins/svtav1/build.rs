//! Links the system libSvtAv1Enc (found with pkg-config) and compiles the
//! small C shim that fills SVT's large configuration struct from a flat one,
//! so the Rust side never mirrors `EbSvtAv1EncConfiguration`.

fn main() {
    println!("cargo:rerun-if-changed=csrc/svt_shim.c");
    let lib = match pkg_config::Config::new()
        .atleast_version("1.4")
        .probe("SvtAv1Enc")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "libSvtAv1Enc >= 1.4 not found via pkg-config ({e}); install Debian's libsvtav1enc-dev"
        ),
    };
    let mut build = cc::Build::new();
    build
        .file("csrc/svt_shim.c")
        .warnings(true)
        .extra_warnings(true);
    for dir in &lib.include_paths {
        build.include(dir);
    }
    for (name, value) in &lib.defines {
        build.define(name, value.as_deref());
    }
    build.compile("s6_svt_shim");
}
