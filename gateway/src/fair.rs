//! The gateway's share of the sequencer's queue, fair between users.
//!
//! Each user's commands wait in a queue of its own (bounded: a full one
//! stops its reader, so TCP pushes back on that client only); one
//! forwarder thread takes them round-robin, at most [`QUANTUM`] commands of
//! a user per turn, into the batches it hands to the sequencer, and keeps
//! at most [`IN_FLIGHT_BATCHES`] batches in the sequencer's queue. So a
//! user's command waits behind at most a few batches and one quantum of
//! every other active user, however much one of them sends: a flood raises
//! the flooder's own latency, not the others'.

use carbonx_engine::Command;
use crossbeam::channel::Sender;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Commands of one user taken per round-robin turn at most.
pub const QUANTUM: usize = 64;
/// Commands one user may have waiting at most; beyond it its reader waits.
pub const PER_USER_MAX: usize = 8 * 1024;
/// Batches in the sequencer's queue at most: enough to keep it busy
/// between two group commits, few enough that what waits is fair.
pub const IN_FLIGHT_BATCHES: usize = 4;
/// How long the forwarder waits before looking at a full sequencer queue again.
const FULL_PAUSE: Duration = Duration::from_micros(50);

#[derive(Debug, Default)]
struct Queues {
    /// Per user (index = user id), its commands in arrival order.
    by_user: Vec<VecDeque<Command>>,
    /// Users with commands waiting, each once, in turn order.
    turn: VecDeque<usize>,
    closed: bool,
}

/// Per-user queues drained round-robin.
#[derive(Debug, Default)]
pub struct FairQueue {
    queues: Mutex<Queues>,
    arrived: Condvar,
}

/// Why [`FairQueue::push`] took only part of a user's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The user's queue is full: wait and push the rest.
    User,
    /// The gateway is closing: the rest are dropped.
    Closed,
}

impl FairQueue {
    /// Queues for `users` users (commands of a larger id are dropped).
    pub fn new(users: usize) -> FairQueue {
        let queues = Queues { by_user: (0..users).map(|_| VecDeque::new()).collect(), ..Queues::default() };
        FairQueue { queues: Mutex::new(queues), arrived: Condvar::new() }
    }

    /// Moves `commands` (in order) into `user`'s queue, as many as fit.
    ///
    /// # Errors
    /// [`Full`] when some are left in `commands`.
    pub fn push(&self, user: usize, commands: &mut Vec<Command>) -> Result<(), Full> {
        let mut queues = self.queues.lock();
        if queues.closed {
            return Err(Full::Closed);
        }
        let Some(queue) = queues.by_user.get_mut(user) else {
            commands.clear();
            return Ok(());
        };
        let was_empty = queue.is_empty();
        let room = PER_USER_MAX.saturating_sub(queue.len()).min(commands.len());
        queue.extend(commands.drain(..room));
        if was_empty && !queue.is_empty() {
            queues.turn.push_back(user);
            self.arrived.notify_one();
        }
        if commands.is_empty() { Ok(()) } else { Err(Full::User) }
    }

    /// Up to `max` commands, round-robin between users, at most
    /// [`QUANTUM`] of a user per turn; waits for at least one. `None`
    /// once closed and empty.
    pub fn pop_batch(&self, max: usize) -> Option<Vec<Command>> {
        let mut queues = self.queues.lock();
        while queues.turn.is_empty() {
            if queues.closed {
                return None;
            }
            self.arrived.wait(&mut queues);
        }
        let mut batch = Vec::with_capacity(max.min(1_024));
        while batch.len() < max {
            let Some(user) = queues.turn.pop_front() else { break };
            let queue = &mut queues.by_user[user];
            let take = QUANTUM.min(max - batch.len()).min(queue.len());
            batch.extend(queue.drain(..take));
            if !queue.is_empty() {
                queues.turn.push_back(user);
            }
        }
        Some(batch)
    }

    /// No more pushes; the forwarder hands on what is queued, then stops.
    pub fn close(&self) {
        self.queues.lock().closed = true;
        self.arrived.notify_all();
    }

    /// Starts the forwarder thread: batches of at most `batch_max`
    /// commands to `sequencer`, at most [`IN_FLIGHT_BATCHES`] queued there.
    /// It ends (dropping `sequencer`) once the queue is closed and drained,
    /// or the sequencer has stopped.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn forward(self: &Arc<Self>, sequencer: Sender<Vec<Command>>, batch_max: usize) -> std::io::Result<()> {
        let queue = Arc::clone(self);
        let run = move || {
            while let Some(batch) = queue.pop_batch(batch_max) {
                while sequencer.len() >= IN_FLIGHT_BATCHES {
                    std::thread::sleep(FULL_PAUSE);
                }
                if sequencer.send(batch).is_err() {
                    tracing::warn!("the sequencer has stopped; commands dropped unacknowledged");
                    queue.close();
                    return;
                }
            }
        };
        std::thread::Builder::new().name("gateway-fair".into()).spawn(run).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonx_engine::{Side, UserId};

    fn order(user: u16, n: u32) -> Command {
        let mut command = Command::demo_order("T", 1, Side::Buy, n + 1, 7_463);
        if let Command::NewOrder(o) = &mut command {
            o.user = UserId::new(user);
        }
        command
    }

    fn user_of(command: &Command) -> u16 {
        match command {
            Command::NewOrder(o) => o.user.get(),
            _ => u16::MAX,
        }
    }

    #[test]
    fn a_flood_of_one_user_does_not_delay_another_beyond_one_quantum() {
        let queue = FairQueue::new(2);
        let mut flood: Vec<Command> = (0..PER_USER_MAX as u32 + 100).map(|n| order(0, n)).collect();
        assert_eq!(queue.push(0, &mut flood), Err(Full::User), "a user's share is bounded");
        assert_eq!(flood.len(), 100);
        let mut quiet: Vec<Command> = (0..5).map(|n| order(1, n)).collect();
        queue.push(1, &mut quiet).unwrap();
        let batch = queue.pop_batch(1_024).unwrap();
        let quiet_at: Vec<usize> = (0..batch.len()).filter(|&i| user_of(&batch[i]) == 1).collect();
        // FIFO would hand them on after all 8,192 of the flood.
        assert_eq!(quiet_at, (QUANTUM..QUANTUM + 5).collect::<Vec<_>>());
        assert_eq!(batch.len(), 1_024);
    }

    #[test]
    fn each_users_commands_keep_their_order_and_close_drains() {
        let queue = FairQueue::new(2);
        for n in 0..200u32 {
            queue.push(usize::from(n % 2 == 0), &mut vec![order(u16::from(n % 2 == 0), n)]).unwrap();
        }
        queue.close();
        assert_eq!(queue.push(0, &mut vec![order(0, 999)]), Err(Full::Closed));
        let mut seen = Vec::new();
        while let Some(batch) = queue.pop_batch(50) {
            seen.extend(batch);
        }
        assert_eq!(seen.len(), 200);
        for user in [0, 1] {
            let sent: Vec<u32> = seen
                .iter()
                .filter_map(|c| match c {
                    Command::NewOrder(o) if o.user.get() == user => Some(o.qty.tonnes()),
                    _ => None,
                })
                .collect();
            assert_eq!(sent.len(), 100);
            assert!(sent.windows(2).all(|w| w[0] < w[1]), "each user's order kept: {sent:?}");
        }
    }
}
