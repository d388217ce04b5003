//! The benchmarks' common configuration, shared by the core's and the embedded crate's
//! benches.

/// A chain `s0 -> s1 -> ... -> sN`, each trigger running one task (`noop`, a name a program
/// registers) before and after.
pub fn chain(n: usize) -> String {
    let mut s = String::from("transitions:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{source: s{i}, dest: s{}, triggers: [{{name: t{i}, before: [noop], after: [noop]}}]}}\n",
            i + 1
        ));
    }
    s
}
