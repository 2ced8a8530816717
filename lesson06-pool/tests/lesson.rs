//! Lição 06: what the listing guarantees, checked on a fork run, a spawn run and the README's
//! sample run.

use std::collections::BTreeSet;

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson06-pool", guarantees);
lesson_tests::check_timeline!("lesson06-pool", guarantees, processes = 3);

/// The README's "Sempre verdadeiro": the ten results come in input order, each squared, each
/// computed by a worker (never the main process), at most two workers in all, and the count
/// printed is the number of worker PIDs in those lines. `map` returns before anything is
/// printed, so the whole order is forced.
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    let workers: Vec<u32> = (0..10u64)
        .map(|n| t.find_one_pid(&format!("Processo {PID} calculou {n}² = {}", n * n)))
        .collect();
    if workers.contains(&main) {
        t.fail("the main process computed a square itself");
    }
    let used: BTreeSet<u32> = workers.iter().copied().collect();
    if used.len() > 2 {
        t.fail(&format!("{} worker PIDs for a pool of two", used.len()));
    }
    let mut lines = vec![format!("Processo principal {main} inicializado")];
    lines.extend(
        (0..10u64)
            .zip(&workers)
            .map(|(n, pid)| format!("Processo {pid} calculou {n}² = {}", n * n)),
    );
    lines.push(format!("Processos usados: {}", used.len()));
    lines.push(format!("Processo principal {main} finalizado"));
    t.assert_lines(&lines);
    t.assert_order(&lines);
}
