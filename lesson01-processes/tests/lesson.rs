//! Lição 01: what the listing guarantees, checked on a fork, a spawn and a forkserver run and the
//! README's sample run.

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson01-processes", guarantees);
lesson_tests::check_timeline!("lesson01-processes", guarantees, processes = 2);

/// The README's "Sempre verdadeiro": the main process's line first, two PIDs, the four lines
/// once each, and each process's own lines in order.
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    let child = t.find_one_pid(&format!("Processo {PID} iniciado"));
    t.assert_distinct(&[("main", main), ("child", child)]);
    let inicializado = format!("Processo principal {main} inicializado");
    let finalizado = format!("Processo principal {main} finalizado");
    let iniciado = format!("Processo {child} iniciado");
    let filho_finalizado = format!("Processo {child} finalizado");
    t.assert_lines(&[&inicializado, &finalizado, &iniciado, &filho_finalizado]);
    // The main process prints "finalizado" right after start(), racing with the child, so
    // only each process's own lines are in a guaranteed order.
    t.assert_order(&[&inicializado, &finalizado]);
    t.assert_order(&[&iniciado, &filho_finalizado]);
}
