//! Lição 05: what the listing guarantees, checked on a fork, a spawn and a forkserver run and the
//! README's sample run.

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson05-value", guarantees);
lesson_tests::check_timeline!("lesson05-value", guarantees, processes = 9);

/// The README's "Sempre verdadeiro": the locked total is always exact; the unlocked one is a
/// count between 1 and 400000 (lost updates lower it, nothing raises it); the lines come in
/// the listing's order, because each total is printed after its four processes are joined.
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    // `[PID]` stands for any number in a pattern: here, the total that survived.
    let sem_trava = match t
        .find(&format!("somar_sem_trava: {PID} de 400000"))
        .as_slice()
    {
        [found] => found.pids[0],
        _ => t.fail("expected one line `somar_sem_trava: N de 400000`"),
    };
    if !(1..=400_000).contains(&sem_trava) {
        t.fail(&format!(
            "the unlocked total {sem_trava} is not between 1 and 400000"
        ));
    }
    let lines = [
        format!("Processo principal {main} inicializado"),
        format!("somar_sem_trava: {sem_trava} de 400000"),
        "somar_com_trava: 400000 de 400000".to_owned(),
        format!("Processo principal {main} finalizado"),
    ];
    t.assert_lines(&lines);
    t.assert_order(&lines);
}
