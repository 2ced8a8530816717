//! A worker rank's whole life: take the token from rank 0, then run the chunks it orders,
//! reporting each, until it says stop; then finalize MPI and exit. `main` never runs here.

use std::io::Write;

use ::mpi::environment::Universe;
use ::mpi::traits::{Communicator, Destination, Source};

use super::protocol::{self, HELLO_TAG, ORDER_TAG, Order, REPORT_TAG, Report, Run};
use crate::pool::task::{self, AuthenticEntry, ChunkOutcome, SealCache, Token};

/// Serves rank 0 until it says stop, then ends the process with code 0. A hello that is not a
/// token ends it with code 2 and a message on stderr (then `mpirun` ends the job, naming this
/// rank): without the token no order can be trusted.
pub(crate) fn serve(universe: Universe) -> ! {
    task::become_worker();
    let world = universe.world();
    let root = world.process_at_rank(0);
    let (hello, _) = root.receive_vec_with_tag::<u8>(HELLO_TAG);
    let token = match protocol::token_of(&hello) {
        Ok(token) => token,
        Err(why) => {
            eprintln!("shared: MPI worker rank {}: {why}", world.rank());
            std::process::exit(2);
        }
    };
    let mut seals = SealCache::default();
    loop {
        let (bytes, _) = root.receive_vec_with_tag::<u8>(ORDER_TAG);
        let report = match protocol::decode_order(&bytes) {
            Ok(Order::Stop) => break,
            Ok(Order::Run(run)) => Report::Done {
                job: run.job,
                chunk: run.chunk,
                outcome: execute(&run, &token, &mut seals).map(serde_bytes::ByteBuf::from),
            },
            Err(why) => Report::Unreadable(why),
        };
        root.send_with_tag(&protocol::encode(&report)[..], REPORT_TAG);
    }
    // What the tasks printed goes out before the process does (`exit` runs no destructors).
    let _ = std::io::stdout().flush();
    drop(universe); // MPI_Finalize
    std::process::exit(0)
}

/// Runs an order's chunk, if the order is sealed with the job's token and names an entry
/// point of this executable, exactly as a local pool worker does.
fn execute(run: &Run, token: &Token, seals: &mut SealCache) -> ChunkOutcome {
    let authentic = AuthenticEntry::check_remembering(run.entry, &run.seal, token, seals)
        .ok_or("the worker rank refused an order not sealed by rank 0")?;
    let entry = task::entry_at(authentic)
        .ok_or("the worker rank refused an order naming no task entry point")?;
    entry(&run.args)
}
