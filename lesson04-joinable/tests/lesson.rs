//! Lição 04: what the listing guarantees, checked on a fork run, a spawn run and the README's
//! sample run. A run also checks that the daemon worker, which loops forever, is gone once the
//! main process exits.

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson04-joinable", guarantees);

/// The README's "Sempre verdadeiro": the whole order is forced. The queue is full (maxsize 3)
/// before start(); one worker takes the tasks in FIFO order; join() returns after the last
/// task_done().
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    let worker = t.find_one_pid(&format!("Processo {PID} iniciado"));
    t.assert_distinct(&[("main", main), ("worker", worker)]);
    let lines = [
        format!("Processo principal {main} inicializado"),
        "qsize(): 3 empty(): False full(): True".to_owned(),
        format!("Processo {worker} iniciado"),
        format!("Processo {worker} concluiu: Tarefa 1"),
        format!("Processo {worker} concluiu: Tarefa 2"),
        format!("Processo {worker} concluiu: Tarefa 3"),
        "qsize(): 0 empty(): True full(): False".to_owned(),
        format!("Processo principal {main} finalizado"),
    ];
    t.assert_lines(&lines);
    t.assert_order(&lines);
}
