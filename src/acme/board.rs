//! The challenge board: the values every running order needs served, merged into one
//! [`ChallengeSet`] and published to the shards, which acknowledge it before the CA is told
//! to validate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::{mpsc, oneshot};

use crate::net::ctx::Shared;
use crate::shard::Command;
use crate::zone::challenge::ChallengeSet;
use crate::zone::name::NameKey;

/// How long shards get to acknowledge a published set.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Values by (certificate unit, challenge name).
type Entries = BTreeMap<(String, Vec<u8>), Vec<String>>;

/// Publishes challenge values; shared by every certificate task.
pub struct Board {
    entries: Mutex<(u64, Entries)>,
    shared: Arc<Shared>,
    shards: Vec<mpsc::UnboundedSender<Command>>,
}

impl Board {
    /// A board publishing into `shared` and asking `shards` for acknowledgements.
    pub fn new(shared: Arc<Shared>, shards: Vec<mpsc::UnboundedSender<Command>>) -> Self {
        Board {
            entries: Mutex::new((0, BTreeMap::new())),
            shared,
            shards,
        }
    }

    /// Serves `values` for `unit` (replacing what it served before) and returns once every
    /// shard has acknowledged the set that holds them.
    pub async fn publish(&self, unit: &str, values: &[(NameKey, String)]) -> Result<(), String> {
        let generation = {
            let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            g.1.retain(|(u, _), _| u != unit);
            for (name, value) in values {
                g.1.entry((unit.to_string(), name.as_slice().to_vec()))
                    .or_default()
                    .push(value.clone());
            }
            g.0 += 1;
            self.store(g.0, &g.1);
            g.0
        };
        self.sync(generation).await
    }

    /// Stops serving the values of `unit`.
    pub fn clear(&self, unit: &str) {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let before = g.1.len();
        g.1.retain(|(u, _), _| u != unit);
        if g.1.len() != before {
            g.0 += 1;
            self.store(g.0, &g.1);
        }
    }

    fn store(&self, generation: u64, entries: &Entries) {
        let keys: Vec<(NameKey, &[String])> = entries
            .iter()
            .filter_map(|((_, name), v)| {
                let n = domain::base::Name::from_slice(name).ok()?;
                Some((NameKey::of(n), v.as_slice()))
            })
            .collect();
        let set = ChallengeSet::new(generation, keys.iter().map(|(k, v)| (k, *v)));
        self.shared.challenges.store(Arc::new(set));
    }

    /// Waits until every shard reports a generation at least `generation`.
    async fn sync(&self, generation: u64) -> Result<(), String> {
        let mut waits = Vec::with_capacity(self.shards.len());
        for (i, s) in self.shards.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            if s.unbounded_send(Command::Sync(tx)).is_err() {
                return Err(format!("shard {i} has stopped"));
            }
            waits.push((i, rx));
        }
        for (i, rx) in waits {
            match tokio::time::timeout(ACK_TIMEOUT, rx).await {
                Ok(Ok(seen)) if seen >= generation => {}
                Ok(Ok(seen)) => return Err(format!("shard {i} acknowledged generation {seen}, not {generation}")),
                Ok(Err(_)) => return Err(format!("shard {i} has stopped")),
                Err(_) => {
                    return Err(format!(
                        "shard {i} did not acknowledge the challenge set within {ACK_TIMEOUT:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}
