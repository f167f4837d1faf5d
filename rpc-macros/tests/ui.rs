//! Compile-fail and compile-pass cases for `#[remote]`.
//!
//! Regenerate the expected compiler output with
//! `TRYBUILD=overwrite cargo test -p rpc-macros --test ui`, then read every
//! changed `.stderr`: each should show one error on the user's own tokens.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
