//! # Live questions across a cluster: an API node asks, the shards answer
//!
//! A question about live state ([`tagwatch_tracker::questions`]) goes by NATS request–reply to
//! `tw.ask.<partition>`, which the worker applying that partition answers from its tracker:
//! a vehicle's question to its partition, an area's to every partition at once (scatter), the
//! answers joined as one tracker would have answered (gather). Each partition has a deadline; one
//! that does not answer in time (no worker yet, a shard taking it over, a slow shard) is named
//! in the answer instead of holding it up. Plain NATS subjects, not JetStream: a question
//! nobody answered is asked again by the officer, not replayed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Message, Subject};
use bytes::Bytes;
use futures_util::future::join_all;
use tagwatch_tracker::questions::{join, Answer, Question};
use tagwatch_tracker::Tracker;
use tokio::sync::watch;

use crate::{Bus, Groups};

/// The subject a partition's questions go to.
pub fn ask_subject(partition: u16) -> String {
    format!("tw.ask.{partition}")
}

/// Largest question or answer sent (NATS's default largest message is 1 MiB).
pub const MAX_ANSWER_BYTES: usize = 900 * 1024;

/// What a shard replies: the answer, or why there is none.
type Reply = Result<Answer, String>;

/// The shard's side: the reply to a question that arrived for a partition, from its tracker,
/// and where to send it (none if the request has nowhere to reply to). Not async: the tracker
/// stays with its worker, which sends the reply.
pub fn reply(tracker: &Tracker, request: &Message) -> Option<(Subject, Bytes)> {
    let to = request.reply.clone()?;
    Some((to, reply_bytes(tracker, request)))
}

/// The tracker's answer, or why there is none, at most [`MAX_ANSWER_BYTES`].
fn reply_bytes(tracker: &Tracker, request: &Message) -> Bytes {
    let reply: Reply = match serde_json::from_slice::<Question>(&request.payload) {
        Ok(question) => Ok(tracker.answer(&question)),
        Err(error) => Err(format!("not a question: {error}")),
    };
    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
    if bytes.len() > MAX_ANSWER_BYTES {
        let too_large: Reply = Err(format!(
            "the answer is {} bytes, more than {MAX_ANSWER_BYTES}: ask for fewer rows",
            bytes.len()
        ));
        bytes = serde_json::to_vec(&too_large).unwrap_or_default();
    }
    Bytes::from(bytes)
}

/// The API node's side: asks the partition of a vehicle's question, or every partition of an
/// area's.
#[derive(Debug, Clone)]
pub struct Asker {
    client: Client,
    partitions: u16,
    /// Which partition holds a vehicle depends on its pairs.
    groups: watch::Receiver<Arc<Groups>>,
    deadline: Duration,
}

impl Asker {
    pub fn new(bus: &Bus, groups: watch::Receiver<Arc<Groups>>, deadline: Duration) -> Self {
        Self {
            client: bus.jetstream.client(),
            partitions: bus.partitions,
            groups,
            deadline,
        }
    }

    /// The joined answer and the partitions that did not answer in time.
    pub async fn ask(&self, question: &Question) -> Result<(Answer, Vec<u16>), String> {
        let targets: Vec<u16> = match question.tag() {
            Some(tag) => vec![self.groups.borrow().partition(tag, self.partitions)],
            None => (0..self.partitions).collect(),
        };
        gather(&self.client, question, &targets, self.deadline).await
    }
}

/// The answers to a question from `partitions`, joined, and the partitions that did not
/// answer within `deadline` (the API node's side). `Err` when a shard refused the question
/// or its answers do not fit it.
async fn gather(
    client: &Client,
    question: &Question,
    partitions: &[u16],
    deadline: Duration,
) -> Result<(Answer, Vec<u16>), String> {
    let payload = Bytes::from(serde_json::to_vec(question).map_err(|e| e.to_string())?);
    if payload.len() > MAX_ANSWER_BYTES {
        // A vehicle's stops over a long window (travelling-with): NATS would refuse it.
        return Err(format!(
            "the question is {} bytes, more than {MAX_ANSWER_BYTES}: ask about a shorter window",
            payload.len()
        ));
    }
    let asked = partitions.iter().map(|&partition| {
        let payload = payload.clone();
        async move {
            let reply =
                tokio::time::timeout(deadline, client.request(ask_subject(partition), payload))
                    .await;
            (partition, reply)
        }
    });
    let mut answers = Vec::with_capacity(partitions.len());
    let mut missing = Vec::new();
    for (partition, reply) in join_all(asked).await {
        match reply {
            Ok(Ok(message)) => match serde_json::from_slice::<Reply>(&message.payload) {
                Ok(Ok(answer)) => answers.push(answer),
                Ok(Err(refused)) => return Err(format!("partition {partition}: {refused}")),
                Err(error) => return Err(format!("partition {partition}'s answer: {error}")),
            },
            // No worker (no responders), or none in time.
            Ok(Err(_)) | Err(_) => missing.push(partition),
        }
    }
    if answers.is_empty() {
        return Ok((nothing_found(question), missing));
    }
    let joined = join(question, answers)
        .ok_or_else(|| format!("answers of another kind than the question {question:?}"))?;
    Ok((joined, missing))
}

/// The answer of a tracker that knows nothing of what was asked.
fn nothing_found(question: &Question) -> Answer {
    match question {
        Question::LastSeen { .. } => Answer::LastSeen(None),
        Question::Location { .. } => Answer::Location(None),
        Question::Track { .. } => Answer::Track(Vec::new()),
        Question::Near { .. } => Answer::Near(Vec::new()),
        Question::Through { .. } => Answer::Through {
            covered: false,
            passages: Vec::new(),
        },
        Question::Dark { .. } => Answer::Dark {
            reference_lat: None,
            tags: Vec::new(),
        },
        Question::Stops { .. } => Answer::Stops(Some(Vec::new())),
        Question::Arrivals { stops, .. } => Answer::Arrivals(vec![Vec::new(); stops.len()]),
        Question::StationsHeard { stations } => Answer::StationsHeard {
            last_frames: vec![None; stations.len()],
            readers: Vec::new(),
        },
    }
}
