//! Lição 08: what the listing guarantees, checked on a fork, a spawn and a forkserver run and the
//! README's sample run.

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson08-manager", guarantees);
lesson_tests::check_timeline!("lesson08-manager", guarantees, processes = 4);

#[test]
#[should_panic(expected = "roeu: 2")]
fn guarantees_catch_a_lost_update() {
    // Two read-modify-writes of "roeu" interleaved: one count lost.
    let stdout = "Processo principal 1 inicializado\nProcesso 2 contou 8 palavras\n\
                  Processo 3 contou 9 palavras\na: 2\nde: 2\no: 2\n\
                  Palavras diferentes: 13\nProcesso principal 1 finalizado\n";
    guarantees(&Transcript::parse("a lost update", stdout.as_bytes()));
}

/// The README's "Sempre verdadeiro": each child counts its half (8 and 9 words) and says so
/// once; the totals are exact, because every update is made under the manager's lock, and
/// come after both children's lines, because the main process joins them first; the main
/// process's lines open and close the run.
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    let first_half = t.find_one_pid(&format!("Processo {PID} contou 8 palavras"));
    let second_half = t.find_one_pid(&format!("Processo {PID} contou 9 palavras"));
    t.assert_distinct(&[
        ("main", main),
        ("first half", first_half),
        ("second half", second_half),
    ]);
    let inicializado = format!("Processo principal {main} inicializado");
    let primeira = format!("Processo {first_half} contou 8 palavras");
    let segunda = format!("Processo {second_half} contou 9 palavras");
    let totais = [
        "a: 2",
        "de: 2",
        "o: 2",
        "roeu: 2",
        "Palavras diferentes: 13",
    ];
    let finalizado = format!("Processo principal {main} finalizado");
    let mut lines = vec![inicializado.as_str(), primeira.as_str(), segunda.as_str()];
    lines.extend(totais);
    lines.push(&finalizado);
    t.assert_lines(&lines);
    for contou in [&primeira, &segunda] {
        t.assert_order(&[&inicializado, contou, &totais[0].to_owned()]);
    }
    t.assert_order(&totais);
    t.assert_last(&finalizado);
}
