//! The object store: objects, the global `resourceVersion` and the watch history.
//!
//! Rules:
//! - One monotonically increasing counter (like etcd's revision) gives every write its
//!   `resourceVersion`; it is a decimal string to clients, who must treat it as opaque.
//! - Every write (`ADDED`, `MODIFIED`, `DELETED`) is appended to a bounded history and broadcast
//!   to live watchers. A watch may start from any `resourceVersion` still covered by the
//!   history; older ones are answered with `410 Expired`, which makes clients re-list.
//! - The store knows nothing about API semantics (defaults, generation, finalizers): callers
//!   hand it finished objects. It only stamps `metadata.resourceVersion`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// `ADDED`, `MODIFIED` or `DELETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A new object.
    Added,
    /// A changed object.
    Modified,
    /// A removed object (carries its last state, with a new resourceVersion).
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change in the store.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// The store key (`group/plural`) of the object.
    pub res: String,
    /// The object's namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for `DELETED`: its last state).
    pub object: Arc<Value>,
    /// The object before the change (`MODIFIED` only).
    pub prev: Option<Arc<Value>>,
}

/// Past events to replay plus a receiver for the following ones.
pub type Subscription = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// A watch asked for a resourceVersion the history no longer covers.
#[derive(Debug, Clone, Copy)]
pub struct Expired {
    /// The oldest resourceVersion a watch can still start from.
    pub oldest: u64,
}

/// `(namespace, name)`.
pub type ObjKey = (String, String);

/// Objects, revision counter and history.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    data: HashMap<String, BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Highest resourceVersion no longer covered by the history.
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Store {
    /// A store keeping at most `history_limit` events for watch resumption.
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Self {
            rv: 1,
            data: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            tx,
        }
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// The highest resourceVersion no watch can start from any more.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted
    }

    /// One object.
    pub fn get(&self, res: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.data
            .get(res)?
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Objects of a resource, optionally in one namespace, ordered by (namespace, name).
    pub fn list(&self, res: &str, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(m) = self.data.get(res) else {
            return vec![];
        };
        match ns {
            Some(ns) => m
                .range((ns.to_owned(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => m.values().cloned().collect(),
        }
    }

    /// Every stored object with its store key.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Arc<Value>)> {
        self.data
            .iter()
            .flat_map(|(res, m)| m.values().map(move |v| (res.as_str(), v)))
    }

    /// Creates or replaces an object, stamping a new resourceVersion. Returns the stored object.
    pub fn put(&mut self, res: &str, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let obj = Arc::new(obj);
        let prev = self
            .data
            .entry(res.to_owned())
            .or_default()
            .insert((ns.clone(), name), obj.clone());
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            res: res.to_owned(),
            namespace: ns,
            kind,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes an object; the `DELETED` event carries it with a new resourceVersion.
    pub fn remove(&mut self, res: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self
            .data
            .get_mut(res)?
            .remove(&(ns.to_owned(), name.to_owned()))?;
        self.rv += 1;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let last = Arc::new(last);
        self.record(Event {
            rv: self.rv,
            res: res.to_owned(),
            namespace: ns.to_owned(),
            kind: EventType::Deleted,
            object: last.clone(),
            prev: None,
        });
        Some(last)
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(ev);
    }

    /// Events after `from_rv` still in the history, plus a receiver for later ones.
    /// Fails when `from_rv` is older than the history.
    pub fn watch_from(&self, from_rv: u64) -> Result<Subscription, Expired> {
        if from_rv < self.compacted {
            return Err(Expired {
                oldest: self.compacted + 1,
            });
        }
        let past = self
            .history
            .iter()
            .filter(|e| e.rv > from_rv)
            .cloned()
            .collect();
        Ok((past, self.tx.subscribe()))
    }

    /// A receiver for events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(ns: &str, name: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}})
    }

    #[test]
    fn resource_versions_increase_and_history_compacts() {
        let mut s = Store::new(2);
        let a = s.put("/pods", obj("n", "a"));
        let b = s.put("/pods", obj("n", "b"));
        assert!(
            a["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                < b["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
        );
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (past, _) = s.watch_from(rv_a).unwrap();
        assert_eq!(past.len(), 1);
        s.put("/pods", obj("n", "c"));
        s.remove("/pods", "n", "a").unwrap();
        assert!(
            s.watch_from(rv_a).is_err(),
            "history of 2 no longer covers rv_a"
        );
        assert_eq!(s.list("/pods", Some("n")).len(), 2);
        assert_eq!(s.list("/pods", Some("m")).len(), 0);
    }
}
