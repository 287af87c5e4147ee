//! Failover of a room's home under load (docs/pool-protocol.md "Rooms across the pool",
//! "Membership"): three active nodes n1, n2, n3 and a standby n4 on 127.0.0.1–4 share ONE
//! PostgreSQL schema (`$PALAVER_TEST_PG`, else `$DATABASE_URL`; the test fails without them).
//!
//! `kill_the_home_during_a_stream_of_5000_messages`: a room predicted to be homed on n2 (and,
//! once n2 is gone and n4 promoted, on n4 — the freshly promoted standby, which has no session
//! in the room and must load it from the store). Senders s1, s2 (XMPP on n1) and s3, s4 (XMPP on
//! n3) post 1,250 groupchat messages each (`s1#0001` …), each keeping at most [`WINDOW`] posts
//! unanswered, so the stream is fast but bounded. Observers o1 (n1), o3 (n3) and o2 (n2) are in
//! the room too. Every post has a unique body, id and XEP-0359 origin-id, and is
//! *acknowledged* by its reflection (the room echoes it to the sender after the store committed
//! it; its stanza-id is kept), *refused* by an error stanza, or left *unanswered*. A post
//! refused with a temporary error (type `wait`: service-unavailable while the home is gone) is
//! posted again after a backoff as a NEW post (`s1#0042/r2`: new body, new id), as a client
//! would (and starts nothing new while such retries wait); a post refused for good (e.g.
//! not-acceptable: not in the room) is not posted again.
//!
//! After [`KILL_AFTER_ACKS`] acknowledgements n2 is killed with SIGKILL. The senders keep going
//! through the failover. Then, every wait bounded:
//!
//! * every post got an answer (its reflection or an error, within [`STALL`]); none was refused
//!   for good (a session the pool moves is never told it is not in the room: only
//!   service-unavailable, which is retried); every message was eventually acknowledged;
//! * n1's pool status shows n2 down and the standby n4 acting as active;
//! * o1 and o3 saw o2 leave (its last presence is unavailable) while everyone else is present
//!   again, and they are still in the room (a post of theirs is reflected);
//! * o2's user logs in again on n1, rejoins and reads the whole MAM archive (pages of 250):
//!   every acknowledged post is there with the stanza-id of its reflection, no body and no id
//!   twice, each sender's posts in the order they were sent, and the archive is exactly the
//!   `messages` rows of the room in the store (read with `psql`), in `seq` order;
//! * o1 and o3 got every acknowledged message at most once, and all of those acknowledged well
//!   before the kill and all of those sent after the failover was complete for them (their
//!   session rejoined at the new home and the senders had an acknowledgement again); the ones
//!   missed in between are printed.
//!
//! Posts answered both ways (an error, and the reflection: the dead home committed them but
//! its reply was lost, or the reverse) and refused posts found stored anyway are printed, not
//! asserted: that is the at-least-once window of a failover. Timings (failover time: kill →
//! first acknowledgement of a post sent after the kill) are printed, never asserted. On failure
//! the nodes' logs are printed.

mod sip_common;

use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::xmpp::element::Element;
use palaver_e2e::pool::{self, PoolCa, PoolSpec, SharedPool};
use palaver_e2e::raw_client::{Incoming, RawClient};
use palaver_e2e::{must, random_hex, room_jid, xml, STEP_TIMEOUT};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Bound for the pool to form, and for a status change to show.
const CONVERGE: Duration = Duration::from_secs(20);
/// Posts per sender.
const PER_SENDER: usize = 1250;
/// A refused message is posted again (with a new body and id) after this, doubling per
/// attempt up to 1 s, at most [`MAX_ATTEMPTS`] times in all.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const MAX_ATTEMPTS: usize = 30;
/// How long a client's loop waits for a stanza before looking at its state again.
const READ_TICK: Duration = Duration::from_millis(100);
/// Unanswered posts a sender keeps in flight at most.
const WINDOW: usize = 20;
/// Acknowledgements (all senders together) after which n2 is killed.
const KILL_AFTER_ACKS: usize = 1500;
/// A post unanswered this long no longer holds a window slot (it may still be answered late).
const STALL: Duration = Duration::from_secs(10);
/// After this (from the first post) the senders send nothing more.
const STREAM_BOUND: Duration = Duration::from_secs(40);
/// How long the observers may take, after the stream, to get every acknowledged message and
/// the final presences.
const SETTLE: Duration = Duration::from_secs(10);
/// Messages acknowledged this long before the kill were sent while nothing had failed: every
/// observer must have them.
const STEADY_MARGIN: Duration = Duration::from_millis(500);
/// Bound for an observer's own post to come back after the stream.
const STILL_HERE: Duration = Duration::from_secs(10);
/// Page size of the MAM read (the server's maximum).
const MAM_PAGE: usize = 250;
const ACTIVES: [&str; 3] = ["n1", "n2", "n3"];
const SENDERS: [(&str, &str); 4] = [("s1", "n1"), ("s2", "n1"), ("s3", "n3"), ("s4", "n3")];
const OBSERVERS: [(&str, &str); 2] = [("o1", "n1"), ("o3", "n3")];

const NS_SID: &str = "urn:xmpp:sid:0";
const NS_DELAY: &str = "urn:xmpp:delay";

/// What became of one post.
#[derive(Debug, Clone)]
enum Outcome {
    Unanswered,
    /// Reflected: when, and the stanza-id the room gave it.
    Acked {
        at: Instant,
        stanza_id: String,
    },
    /// An error stanza came back: when, and its condition.
    Refused {
        at: Instant,
        condition: String,
    },
}

/// One post.
#[derive(Debug, Clone)]
struct Post {
    /// The message number (1..=PER_SENDER) and which attempt to post it this is.
    n: usize,
    attempt: usize,
    body: String,
    sent_at: Instant,
    outcome: Outcome,
}

/// A sender's run.
struct SenderRun {
    nick: &'static str,
    node: &'static str,
    /// Kept open to the end: a closed session would leave the room.
    _client: RawClient,
    posts: Vec<Post>,
    /// Messages refused [`MAX_ATTEMPTS`] times.
    given_up: Vec<usize>,
    /// Posts answered both ways (reflected and refused, in either order): the failover's
    /// ambiguous window (the dead home may have committed a post whose reply it never sent).
    contradictions: Vec<String>,
    /// Protocol oddities (a reflection after an error, twice, an error for nothing…).
    anomalies: Vec<String>,
    /// Why it stopped early, if it did.
    stopped: Option<String>,
    /// Groupchat messages of others it read.
    others: usize,
}

impl SenderRun {
    fn who(&self) -> String {
        format!("{} (XMPP on {})", self.nick, self.node)
    }
}

fn from_room<'a>(el: &'a Element, room: &str) -> Option<&'a str> {
    let from = el.attr("from")?;
    xml::bare(from).eq_ignore_ascii_case(room).then_some(from)
}

fn is_live_groupchat(el: &Element) -> bool {
    el.name == "message"
        && el.attr("type") == Some("groupchat")
        && el.get_child("delay", NS_DELAY).is_none()
}

/// The next stanza within `wait`; `Ok(None)` when nothing came, an error when the stream ended.
async fn next_within(c: &mut RawClient, wait: Duration) -> Result<Option<Element>> {
    // `read_event` only awaits the socket read, so dropping it on the timeout loses nothing.
    let far = Instant::now() + Duration::from_secs(3600);
    match tokio::time::timeout(wait, c.read_event(far)).await {
        Err(_) => Ok(None),
        Ok(Ok(Incoming::Stanza(el))) if xml::is_stream_error(&el) => {
            bail!("stream error: {}", xml::show(&el))
        }
        Ok(Ok(Incoming::Stanza(el))) => Ok(Some(el)),
        Ok(Ok(Incoming::Open)) => Ok(None),
        Ok(Ok(Incoming::Close | Incoming::Eof)) => bail!(
            "the server closed the stream; last bytes: {}",
            xml::cut(&c.tail_text(), 600)
        ),
        Ok(Err(e)) => Err(e),
    }
}

/// Posts `PER_SENDER` messages to `room` with at most `WINDOW` unanswered (younger than
/// `STALL`), reading everything that comes, until all are sent and answered (or stale) or
/// `stop_sending` passed (then until the unanswered ones are stale).
async fn run_sender(
    mut client: RawClient,
    nick: &'static str,
    node: &'static str,
    room: String,
    acks: Arc<AtomicUsize>,
    stop_sending: Instant,
) -> SenderRun {
    let tag = random_hex(6);
    let mut posts: Vec<Post> = Vec::with_capacity(PER_SENDER);
    let mut by_id: HashMap<String, usize> = HashMap::new();
    // Unresolved posts, by index (sent in index order, so the stale ones come first).
    let mut pending: BTreeSet<usize> = BTreeSet::new();
    // Refused messages to post again: (message number, attempt, not before).
    let mut retries: VecDeque<(usize, usize, Instant)> = VecDeque::new();
    let mut next_new = 1;
    let mut given_up = Vec::new();
    let mut anomalies = Vec::new();
    let mut contradictions = Vec::new();
    let mut stopped = None;
    let mut others = 0;
    let room_esc = xml::esc(&room);
    let in_flight = |posts: &[Post], pending: &BTreeSet<usize>, now: Instant| {
        pending
            .iter()
            .filter(|i| now.duration_since(posts[**i].sent_at) < STALL)
            .count()
    };
    'run: loop {
        let now = Instant::now();
        let mut batch = String::new();
        let mut flight = in_flight(&posts, &pending, now);
        while now < stop_sending && flight < WINDOW {
            let (n, attempt) = match retries.front() {
                Some(&(n, attempt, at)) if at <= now => {
                    retries.pop_front();
                    (n, attempt)
                }
                // While refused posts wait to be posted again, nothing new is started (a client
                // told to wait backs off).
                _ if next_new <= PER_SENDER && retries.is_empty() => {
                    next_new += 1;
                    (next_new - 1, 1)
                }
                _ => break,
            };
            let id = format!("{nick}-{n:04}-{attempt}-{tag}");
            let body = if attempt == 1 {
                format!("{nick}#{n:04}")
            } else {
                format!("{nick}#{n:04}/r{attempt}")
            };
            batch.push_str(&format!(
                "<message to='{room_esc}' type='groupchat' id='{id}'><body>{body}</body>\
                 <origin-id xmlns='{NS_SID}' id='{id}'/></message>"
            ));
            by_id.insert(id, posts.len());
            pending.insert(posts.len());
            posts.push(Post {
                n,
                attempt,
                body,
                sent_at: now,
                outcome: Outcome::Unanswered,
            });
            flight += 1;
        }
        if !batch.is_empty() {
            if let Err(e) = client.send_str(&batch).await {
                stopped = Some(format!("sending: {e:#}"));
                break 'run;
            }
        }
        let sending_done = (next_new > PER_SENDER && retries.is_empty()) || now >= stop_sending;
        if sending_done && in_flight(&posts, &pending, Instant::now()) == 0 {
            break 'run;
        }
        // Wake up for the next retry that is due.
        let wait = retries
            .iter()
            .map(|(_, _, at)| at.saturating_duration_since(now))
            .min()
            .unwrap_or(READ_TICK)
            .clamp(Duration::from_millis(1), READ_TICK);
        let el = match next_within(&mut client, wait).await {
            Ok(Some(el)) => el,
            Ok(None) => continue,
            Err(e) => {
                stopped = Some(format!("reading: {e:#}"));
                break 'run;
            }
        };
        if el.name != "message" {
            continue;
        }
        let Some(from) = from_room(&el, &room) else {
            continue;
        };
        let own = xml::resource(from) == Some(nick);
        let idx = el.attr("id").and_then(|id| by_id.get(id)).copied();
        if el.attr("type") == Some("error") {
            let condition = xml::stanza_error_condition(&el).unwrap_or_default();
            // Only a temporary refusal (`wait`, e.g. service-unavailable) is worth a retry.
            let temporary =
                el.get_child("error", &el.ns).and_then(|e| e.attr("type")) == Some("wait");
            match idx {
                Some(i) if pending.remove(&i) => {
                    let at = Instant::now();
                    let (n, attempt) = (posts[i].n, posts[i].attempt);
                    if temporary && attempt < MAX_ATTEMPTS {
                        // Exponential backoff from 100 ms, at most 1 s; in retry order.
                        let backoff = RETRY_BACKOFF * 2u32.pow((attempt as u32 - 1).min(4));
                        let due = at + backoff.min(Duration::from_secs(1));
                        let pos = retries.partition_point(|r| r.2 <= due);
                        retries.insert(pos, (n, attempt + 1, due));
                    } else {
                        given_up.push(n);
                    }
                    posts[i].outcome = Outcome::Refused { at, condition };
                }
                Some(i) => match &posts[i].outcome {
                    Outcome::Acked { stanza_id, .. } => contradictions.push(format!(
                        "{}: error <{condition}/> after its reflection (stanza-id {stanza_id})",
                        posts[i].body
                    )),
                    other => anomalies.push(format!(
                        "an error <{condition}/> for {}, already {other:?}",
                        posts[i].body
                    )),
                },
                None => anomalies.push(format!(
                    "an error from the room for no post of ours: {}",
                    xml::cut(&xml::show(&el), 300)
                )),
            }
            continue;
        }
        if !is_live_groupchat(&el) {
            continue;
        }
        if !own {
            others += 1;
            continue;
        }
        let Some(i) = idx else {
            anomalies.push(format!(
                "a reflection of no post of ours: {}",
                xml::cut(&xml::show(&el), 300)
            ));
            continue;
        };
        let body = xml::body(&el).unwrap_or_default();
        if body != posts[i].body {
            anomalies.push(format!(
                "the reflection of {} carries the body {body:?}",
                posts[i].body
            ));
        }
        let stanza_id = el
            .children_named("stanza-id", NS_SID)
            .find(|s| s.attr("by").is_some_and(|b| b.eq_ignore_ascii_case(&room)))
            .and_then(|s| s.attr("id"))
            .unwrap_or_default()
            .to_string();
        if stanza_id.is_empty() {
            anomalies.push(format!(
                "the reflection of {} has no stanza-id",
                posts[i].body
            ));
        }
        match &posts[i].outcome {
            Outcome::Unanswered => {}
            Outcome::Acked { .. } => {
                anomalies.push(format!("{} reflected twice", posts[i].body));
                continue;
            }
            Outcome::Refused { condition, .. } => contradictions.push(format!(
                "{}: reflected (so stored) after an error <{condition}/>",
                posts[i].body
            )),
        }
        pending.remove(&i);
        posts[i].outcome = Outcome::Acked {
            at: Instant::now(),
            stanza_id,
        };
        acks.fetch_add(1, Ordering::Relaxed);
    }
    SenderRun {
        nick,
        node,
        _client: client,
        posts,
        given_up,
        contradictions,
        anomalies,
        stopped,
        others,
    }
}

/// An observer's run.
struct ObserverRun {
    nick: &'static str,
    node: &'static str,
    client: RawClient,
    /// Arrival times of each live groupchat body.
    bodies: HashMap<String, Vec<Instant>>,
    /// Presences from the room, in order: (when, nick, available, self-presence).
    presences: Vec<(Instant, String, bool, bool)>,
    stopped: Option<String>,
}

impl ObserverRun {
    fn who(&self) -> String {
        format!("{} (XMPP on {})", self.nick, self.node)
    }

    /// The last presence of each nick: available or not.
    fn last_presence(&self) -> HashMap<&str, bool> {
        let mut out = HashMap::new();
        for (_, nick, available, _) in &self.presences {
            out.insert(nick.as_str(), *available);
        }
        out
    }

    /// Whether `o2` was last seen gone and every other nick of the test present.
    fn presences_settled(&self) -> bool {
        let last = self.last_presence();
        last.get("o2") == Some(&false)
            && SENDERS
                .iter()
                .chain(OBSERVERS.iter())
                .all(|(nick, _)| last.get(nick) == Some(&true))
    }
}

/// When an observer may stop: it got all of `want` and the presences settled, or `deadline`.
struct StopWhen {
    want: HashSet<String>,
    deadline: Instant,
}

/// Reads everything from `room` until told to stop (see [`StopWhen`]).
async fn run_observer(
    client: RawClient,
    nick: &'static str,
    node: &'static str,
    room: String,
    mut stop: watch::Receiver<Option<Arc<StopWhen>>>,
) -> ObserverRun {
    let mut run = ObserverRun {
        nick,
        node,
        client,
        bodies: HashMap::new(),
        presences: Vec::new(),
        stopped: None,
    };
    loop {
        if let Some(when) = stop.borrow_and_update().clone() {
            let all = when.want.iter().all(|b| run.bodies.contains_key(b));
            if (all && run.presences_settled()) || Instant::now() > when.deadline {
                return run;
            }
        }
        let el = match next_within(&mut run.client, READ_TICK).await {
            Ok(Some(el)) => el,
            Ok(None) => continue,
            Err(e) => {
                run.stopped = Some(format!("{e:#}"));
                return run;
            }
        };
        let Some(from) = from_room(&el, &room) else {
            continue;
        };
        let Some(who) = xml::resource(from).map(str::to_string) else {
            continue;
        };
        if el.name == "presence" {
            let available = el.attr("type") != Some("unavailable");
            let own = xml::muc_status_codes(&el).contains(&110);
            run.presences.push((Instant::now(), who, available, own));
        } else if is_live_groupchat(&el) {
            if let Some(body) = xml::body(&el) {
                run.bodies.entry(body).or_default().push(Instant::now());
            }
        }
    }
}

/// o2 on n2: reads (so n2 never finds it slow) until n2 dies; groupchat messages read.
async fn run_doomed(mut client: RawClient, bound: Duration) -> (usize, String) {
    let deadline = Instant::now() + bound;
    let mut got = 0;
    while Instant::now() < deadline {
        match next_within(&mut client, Duration::from_millis(200)).await {
            Ok(Some(el)) if is_live_groupchat(&el) => got += 1,
            Ok(_) => {}
            Err(e) => return (got, xml::cut(&format!("{e:#}"), 200)),
        }
    }
    (got, "still connected at the end".into())
}

/// A room name predicted to be homed on n2 among n1–n3 and on n4 once n2 is gone.
fn pick_room() -> Result<String> {
    let prefix = format!("failover-{}", random_hex(6));
    (0..10_000)
        .map(|k| format!("{prefix}-{k}"))
        .find(|r| {
            pool::predicted_home(r, &ACTIVES) == Some("n2")
                && pool::predicted_home(r, &["n1", "n3", "n4"]) == Some("n4")
        })
        .ok_or_else(|| anyhow!("no room name {prefix}-<k> homed on n2, then n4"))
}

/// The room's rows in the store, in `seq` order: (seq, stanza_id, body).
async fn stored_messages(pool: &SharedPool, room: &str) -> Result<Vec<(i64, String, String)>> {
    let url = pool.store_url();
    let (base, schema) = url
        .rsplit_once("schema=")
        .ok_or_else(|| anyhow!("no schema in the store URL {url}"))?;
    let base = base.trim_end_matches(['?', '&']);
    let schema = schema.split('&').next().unwrap_or_default();
    let sql = format!(
        "SELECT m.seq, m.stanza_id, m.body FROM \"{schema}\".messages m \
         JOIN \"{schema}\".rooms r ON r.id = m.room_id WHERE r.name = '{room}' ORDER BY m.seq"
    );
    let out = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio::process::Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
            .args(["-d", base, "-c", &sql])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("psql did not answer within {STEP_TIMEOUT:?}"))?
    .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.is_empty() {
            continue;
        }
        let mut f = line.splitn(3, '\t');
        let (Some(seq), Some(sid), Some(body)) = (f.next(), f.next(), f.next()) else {
            bail!("unexpected psql row {line:?}");
        };
        rows.push((seq.parse()?, sid.to_string(), body.to_string()));
    }
    Ok(rows)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_home_during_a_stream_of_5000_messages() {
    let t0 = Instant::now();
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active_and_standby());
    let mut pool = must(pool::start_shared_pg_pool(&spec, &ca, &["n1", "n2", "n3", "n4"]).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(
        pool.add_users(&["s1", "s2", "s3", "s4", "o1", "o2", "o3"])
            .await,
    );
    eprintln!("{}", pool.describe());
    let room_name = must(pick_room());
    let room = room_jid(&room_name);
    eprintln!(
        "room {room}: predicted home n2, after n2's death n4 (heartbeat {} ms, dead after {} ms); \
         pool up after {} ms",
        spec.heartbeat_ms,
        spec.dead_after_ms,
        ms(t0.elapsed())
    );

    // Everyone joins; s1 creates the room (instant, persistent by default).
    let mut senders = Vec::new();
    for (nick, node) in SENDERS {
        senders.push((nick, node, must(pool.xmpp(node, nick).await)));
    }
    let mut observers = Vec::new();
    for (nick, node) in OBSERVERS {
        observers.push((nick, node, must(pool.xmpp(node, nick).await)));
    }
    let mut o2 = must(pool.xmpp("n2", "o2").await);
    must(sip_common::create_room(&mut senders[0].2, "s1", &room, &[]).await);
    for (nick, node, c) in senders.iter_mut().skip(1).chain(observers.iter_mut()) {
        must(
            c.join(&room, nick, None)
                .await
                .and_then(|j| j.joined())
                .with_context(|| format!("{nick} (XMPP on {node}) joining {room}")),
        );
    }
    must(
        o2.join(&room, "o2", None)
            .await
            .and_then(|j| j.joined())
            .context("o2 (XMPP on n2) joining"),
    );

    // The stream.
    let acks = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel::<Option<Arc<StopWhen>>>(None);
    let observer_tasks: Vec<_> = observers
        .into_iter()
        .map(|(nick, node, c)| {
            tokio::spawn(run_observer(c, nick, node, room.clone(), stop_rx.clone()))
        })
        .collect();
    let doomed = tokio::spawn(run_doomed(o2, STREAM_BOUND + STALL));
    let started = Instant::now();
    let stop_sending = started + STREAM_BOUND;
    let sender_tasks: Vec<_> = senders
        .into_iter()
        .map(|(nick, node, c)| {
            tokio::spawn(run_sender(
                c,
                nick,
                node,
                room.clone(),
                acks.clone(),
                stop_sending,
            ))
        })
        .collect();

    // kill -9 the home after KILL_AFTER_ACKS acknowledgements.
    while acks.load(Ordering::Relaxed) < KILL_AFTER_ACKS {
        if Instant::now() > stop_sending || sender_tasks.iter().all(|t| t.is_finished()) {
            panic!(
                "only {} acknowledgements in {:?}, before the kill\n{}",
                acks.load(Ordering::Relaxed),
                started.elapsed(),
                pool.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acks_before = acks.load(Ordering::Relaxed);
    let stream_rate = acks_before as f64 / started.elapsed().as_secs_f64();
    let kill = async {
        let n2 = pool.node_mut("n2")?;
        n2.kill().await
    };
    must(kill.await);
    // `kill` returns once the process is gone: whatever is sent from now on n2 never saw.
    let killed = Instant::now();
    eprintln!(
        "killed n2 (SIGKILL) after {acks_before} acknowledgements, {} ms into the stream \
         ({stream_rate:.0} acknowledgements/s before the kill)",
        ms(killed.duration_since(started))
    );

    // n1 sees n2 down and n4 promoted.
    let (n1_status, seen) = must(
        pool::wait_status(
            must(pool.node("n1")),
            CONVERGE,
            "n1 sees n2 down and n4 acting as active",
            |s: &Value| {
                pool::state(s, "n2") == "down"
                    && pool::member(s, "n4").is_some_and(|m| m["effective_role"] == "active")
            },
            |_| None,
        )
        .await,
    );
    eprintln!(
        "n1's status showed n2 down, n4 active {} ms after the kill; majority {}",
        ms(seen.duration_since(killed.into_std())),
        n1_status["majority"]
    );

    let mut runs = Vec::new();
    for t in sender_tasks {
        runs.push(must(t.await.map_err(|e| anyhow!("sender task: {e}"))));
    }
    let stream_end = Instant::now();
    let mut problems: Vec<String> = Vec::new();
    let posts: Vec<&Post> = runs.iter().flat_map(|r| r.posts.iter()).collect();
    let acked: Vec<&Post> = posts
        .iter()
        .copied()
        .filter(|p| matches!(p.outcome, Outcome::Acked { .. }))
        .collect();
    let refused: Vec<&Post> = posts
        .iter()
        .copied()
        .filter(|p| matches!(p.outcome, Outcome::Refused { .. }))
        .collect();
    let unanswered: Vec<&Post> = posts
        .iter()
        .copied()
        .filter(|p| matches!(p.outcome, Outcome::Unanswered))
        .collect();
    for r in &runs {
        if let Some(why) = &r.stopped {
            problems.push(format!("{} stopped early: {why}", r.who()));
        }
        let delivered: HashSet<usize> = r
            .posts
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Acked { .. }))
            .map(|p| p.n)
            .collect();
        let lost: Vec<usize> = (1..=PER_SENDER)
            .filter(|n| !delivered.contains(n))
            .collect();
        let mut conditions: HashMap<&str, usize> = HashMap::new();
        for p in &r.posts {
            if let Outcome::Refused { condition, .. } = &p.outcome {
                *conditions.entry(condition.as_str()).or_default() += 1;
            }
        }
        eprintln!(
            "{}: {} of its {PER_SENDER} messages acknowledged ({} retried at least once, {} given \
             up: refused for good, or {MAX_ATTEMPTS} times); refusals {conditions:?}",
            r.who(),
            delivered.len(),
            r.posts.iter().filter(|p| p.attempt == 2).count(),
            r.given_up.len()
        );
        if !lost.is_empty() {
            let mut given_up = r.given_up.clone();
            given_up.sort_unstable();
            problems.push(format!(
                "{}: {} of its messages never acknowledged (refusals {conditions:?}; {} given up \
                 {:?}; the others unanswered or not sent by the end of the stream), e.g. {:?}",
                r.who(),
                lost.len(),
                given_up.len(),
                &given_up[..given_up.len().min(10)],
                &lost[..lost.len().min(10)]
            ));
        }
        if !r.contradictions.is_empty() {
            eprintln!(
                "{}: {} posts answered both ways (reflection and error): {:?}",
                r.who(),
                r.contradictions.len(),
                &r.contradictions[..r.contradictions.len().min(10)]
            );
        }
        for a in r.anomalies.iter().take(10) {
            problems.push(format!("{}: {a}", r.who()));
        }
        if r.anomalies.len() > 10 {
            problems.push(format!(
                "{}: {} more anomalies",
                r.who(),
                r.anomalies.len() - 10
            ));
        }
        eprintln!(
            "{}: posts sent {}, acked {}, refused {}, unanswered {}; read {} messages of others",
            r.who(),
            r.posts.len(),
            r.posts
                .iter()
                .filter(|p| matches!(p.outcome, Outcome::Acked { .. }))
                .count(),
            r.posts
                .iter()
                .filter(|p| matches!(p.outcome, Outcome::Refused { .. }))
                .count(),
            r.posts
                .iter()
                .filter(|p| matches!(p.outcome, Outcome::Unanswered))
                .count(),
            r.others
        );
    }
    let mut conditions: HashMap<&str, usize> = HashMap::new();
    for p in &refused {
        if let Outcome::Refused { condition, .. } = &p.outcome {
            *conditions.entry(condition.as_str()).or_default() += 1;
        }
    }
    let refused_window = refused
        .iter()
        .filter_map(|p| match p.outcome {
            Outcome::Refused { at, .. } => Some(at),
            _ => None,
        })
        .fold(None::<(Instant, Instant)>, |acc, at| match acc {
            None => Some((at, at)),
            Some((a, b)) => Some((a.min(at), b.max(at))),
        });
    // A session the pool is moving to the new home is never told it is not in the room: a
    // refusal for good (not-acceptable…) makes a client give up the message or the room.
    let for_good: Vec<(&Post, &str, u128)> = refused
        .iter()
        .filter_map(|p| match &p.outcome {
            Outcome::Refused { condition, at } if condition != "service-unavailable" => Some((
                *p,
                condition.as_str(),
                ms(at.saturating_duration_since(killed)),
            )),
            _ => None,
        })
        .collect();
    if !for_good.is_empty() {
        let from = for_good.iter().map(|f| f.2).min().unwrap_or_default();
        let to = for_good.iter().map(|f| f.2).max().unwrap_or_default();
        let mut by_sender: HashMap<&str, usize> = HashMap::new();
        for (p, _, _) in &for_good {
            *by_sender
                .entry(p.body.split('#').next().unwrap_or("?"))
                .or_default() += 1;
        }
        let mut by_sender: Vec<_> = by_sender.into_iter().collect();
        by_sender.sort_unstable();
        let examples: Vec<String> = for_good
            .iter()
            .take(5)
            .map(|(p, c, at)| format!("{} <{c}/> at +{at} ms", p.body))
            .collect();
        problems.push(format!(
            "{} posts refused for good while their sessions were being moved to the new home \
             (between {from} and {to} ms after the kill; by sender {by_sender:?}), e.g. {examples:?}",
            for_good.len()
        ));
    }
    eprintln!(
        "refusals by condition: {conditions:?}; refused between {:?} (ms after the kill)",
        refused_window.map(|(a, b)| (
            a.saturating_duration_since(killed).as_millis(),
            b.saturating_duration_since(killed).as_millis()
        ))
    );
    // Failover time: kill → first acknowledgement of a post sent after the kill.
    let first_ack_after = acked
        .iter()
        .filter(|p| p.sent_at > killed)
        .filter_map(|p| match p.outcome {
            Outcome::Acked { at, .. } => Some(at),
            _ => None,
        })
        .min();
    let last_ack_before = acked
        .iter()
        .filter_map(|p| match p.outcome {
            Outcome::Acked { at, .. } if at <= killed => Some(at),
            _ => None,
        })
        .max();
    let failover = first_ack_after.map(|at| at.duration_since(killed));
    match (failover, last_ack_before) {
        (Some(f), Some(last)) => eprintln!(
            "failover: last acknowledgement {} ms before the kill; first acknowledgement of a post \
             sent after the kill {} ms after it",
            ms(killed.duration_since(last)),
            ms(f)
        ),
        _ => problems.push(format!(
            "no post sent after the kill was acknowledged (stream ended {} ms after the kill)",
            ms(stream_end.duration_since(killed))
        )),
    }

    // The observers get every acknowledged message and the final presences, or time out.
    let want: HashSet<String> = acked.iter().map(|p| p.body.clone()).collect();
    stop_tx.send_replace(Some(Arc::new(StopWhen {
        want: want.clone(),
        deadline: Instant::now() + SETTLE,
    })));
    let mut obs = Vec::new();
    for t in observer_tasks {
        obs.push(must(t.await.map_err(|e| anyhow!("observer task: {e}"))));
    }
    let (o2_got, o2_end) = must(doomed.await.map_err(|e| anyhow!("o2 task: {e}")));
    eprintln!("o2 (XMPP on n2) read {o2_got} messages; its stream: {o2_end}");

    for o in &mut obs {
        let who = o.who();
        if let Some(why) = &o.stopped {
            problems.push(format!("{who} stopped reading: {why}"));
        }
        // o2 left (as everyone saw it go), the others are back.
        let o2_left = o
            .presences
            .iter()
            .any(|(at, nick, available, _)| nick == "o2" && !available && *at > killed);
        if !o2_left {
            problems.push(format!("{who} never saw o2 leave after the kill"));
        }
        let last = o.last_presence();
        if last.get("o2") != Some(&false) {
            problems.push(format!(
                "{who}: o2 (on the dead n2) is last seen {:?}",
                last.get("o2")
            ));
        }
        for (nick, _) in SENDERS.iter().chain(OBSERVERS.iter()) {
            if last.get(nick) != Some(&true) {
                problems.push(format!(
                    "{who}: {nick} is last seen {:?} (should be back in the room)",
                    last.get(nick)
                ));
            }
        }
        // Duplicates and misses.
        let dups: Vec<&String> = o
            .bodies
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(b, _)| b)
            .collect();
        if !dups.is_empty() {
            let mut d: Vec<&String> = dups.clone();
            d.sort();
            problems.push(format!(
                "{who} got {} messages more than once, e.g. {:?}",
                dups.len(),
                &d[..d.len().min(10)]
            ));
        }
        let rejoined = o
            .presences
            .iter()
            .find(|(at, _, available, own)| *at > killed && *available && *own)
            .map(|(at, ..)| *at);
        // Complete for this observer: rejoined at the new home and the senders acknowledged
        // again (a post sent after both reaches the new home after the rejoin).
        let complete = match (rejoined, first_ack_after) {
            (Some(r), Some(f)) => Some(r.max(f)),
            (None, f) => f,
            (Some(_), None) => None,
        };
        let missed: Vec<&Post> = acked
            .iter()
            .copied()
            .filter(|p| !o.bodies.contains_key(&p.body))
            .collect();
        let missed_after: Vec<&str> = missed
            .iter()
            .filter(|p| complete.is_some_and(|c| p.sent_at > c))
            .map(|p| p.body.as_str())
            .collect();
        // Before the kill (by a margin), nothing failed: every acknowledged message arrives.
        let missed_steady: Vec<&str> = missed
            .iter()
            .filter(|p| match p.outcome {
                Outcome::Acked { at, .. } => at + STEADY_MARGIN < killed,
                _ => false,
            })
            .map(|p| p.body.as_str())
            .collect();
        let mut missed_bodies: Vec<&str> = missed.iter().map(|p| p.body.as_str()).collect();
        missed_bodies.sort_unstable();
        eprintln!(
            "{who}: got {} distinct messages; rejoined at the new home {:?} ms after the kill; \
             missed {} acknowledged ({} of them acknowledged over {STEADY_MARGIN:?} before the \
             kill, {} sent after the failover was complete for it){}",
            o.bodies.len(),
            rejoined.map(|r| ms(r.duration_since(killed))),
            missed.len(),
            missed_steady.len(),
            missed_after.len(),
            if missed.is_empty() {
                String::new()
            } else {
                format!(
                    ": {:?}{}",
                    &missed_bodies[..missed_bodies.len().min(20)],
                    if missed.len() > 20 { " …" } else { "" }
                )
            }
        );
        if rejoined.is_none() {
            problems.push(format!(
                "{who} saw no self-presence (status 110) after the kill: not rejoined at the new home?"
            ));
        }
        if !missed_steady.is_empty() {
            problems.push(format!(
                "{who} missed {} messages acknowledged over {STEADY_MARGIN:?} before the kill \
                 (nothing had failed yet), e.g. {:?}",
                missed_steady.len(),
                &missed_steady[..missed_steady.len().min(10)]
            ));
        }
        if !missed_after.is_empty() {
            problems.push(format!(
                "{who} missed {} acknowledged messages sent after the failover was complete for \
                 it, e.g. {:?}",
                missed_after.len(),
                &missed_after[..missed_after.len().min(10)]
            ));
        }
        // Still in the room: a post of its own comes back.
        let body = format!("{} is still here", o.nick);
        let c = &mut o.client;
        let id = format!("still-{}", random_hex(8));
        let still = async {
            c.send_str(&format!(
                "<message to='{}' type='groupchat' id='{id}'><body>{body}</body></message>",
                xml::esc(&room)
            ))
            .await?;
            c.wait_for(STILL_HERE, &format!("{body:?} reflected"), |el| {
                el.name == "message"
                    && from_room(el, &room).is_some()
                    && ((el.attr("type") == Some("error") && el.attr("id") == Some(id.as_str()))
                        || (is_live_groupchat(el) && xml::body(el).as_deref() == Some(&body)))
            })
            .await
        };
        match still.await {
            Ok(el) if el.attr("type") == Some("error") => problems.push(format!(
                "{who}: own post after the failover refused: {}",
                xml::cut(&xml::show(&el), 600)
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "{who}: own post after the failover got neither its reflection nor an error: {}",
                xml::cut(&format!("{e:#}"), 800)
            )),
        }
    }

    // Unanswered posts: did the observers (one on the sender's node) get them?
    for r in &runs {
        let lost: Vec<&Post> = r
            .posts
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Unanswered))
            .collect();
        if lost.is_empty() {
            continue;
        }
        let seen_by: Vec<String> = obs
            .iter()
            .map(|o| {
                let got = lost
                    .iter()
                    .filter(|p| o.bodies.contains_key(&p.body))
                    .count();
                format!("{} got {got}", o.who())
            })
            .collect();
        let bodies: Vec<&str> = lost.iter().map(|p| p.body.as_str()).collect();
        problems.push(format!(
            "{}: {} posts got neither their reflection nor an error within {STALL:?} ({}): {:?}",
            r.who(),
            lost.len(),
            seen_by.join(", "),
            &bodies[..bodies.len().min(10)]
        ));
    }

    // o2's user comes back on a survivor and reads the whole archive.
    let read_start = Instant::now();
    let mam = async {
        let mut c = pool.xmpp("n1", "o2").await?;
        c.join(&room, "o2", None).await?.joined()?;
        let r = c.mam_all(&room, MAM_PAGE).await?;
        c.close().await;
        Ok::<_, anyhow::Error>(r)
    };
    let (items, pages) = match mam.await {
        Ok(r) => r,
        Err(e) => panic!(
            "o2 rejoining on n1 and reading the archive: {e:#}\nproblems so far: {problems:#?}\n{}",
            pool.diagnostics()
        ),
    };
    eprintln!(
        "o2 (again, XMPP on n1) read {} archived messages in {} pages in {} ms",
        items.len(),
        pages.len(),
        ms(read_start.elapsed())
    );
    let mut by_body: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        by_body
            .entry(it.body.as_deref().unwrap_or(""))
            .or_default()
            .push(i);
        *by_id.entry(it.id.as_str()).or_default() += 1;
    }
    let twice: Vec<&&str> = by_body
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(b, _)| b)
        .collect();
    if !twice.is_empty() {
        problems.push(format!(
            "the archive holds {} bodies more than once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(10)]
        ));
    }
    let ids_twice = by_id.values().filter(|n| **n > 1).count();
    if ids_twice > 0 {
        problems.push(format!("{ids_twice} archive ids appear more than once"));
    }
    let mut not_archived = Vec::new();
    let mut wrong_id = Vec::new();
    for p in &acked {
        let Outcome::Acked { stanza_id, .. } = &p.outcome else {
            continue;
        };
        match by_body.get(p.body.as_str()) {
            None => not_archived.push(p.body.as_str()),
            Some(v) => {
                if items[v[0]].id != *stanza_id {
                    wrong_id.push(format!(
                        "{}: reflected with stanza-id {stanza_id}, archived as {}",
                        p.body, items[v[0]].id
                    ));
                }
            }
        }
    }
    if !not_archived.is_empty() {
        problems.push(format!(
            "{} acknowledged messages are not in the archive, e.g. {:?}",
            not_archived.len(),
            &not_archived[..not_archived.len().min(10)]
        ));
    }
    if !wrong_id.is_empty() {
        problems.push(format!(
            "{} acknowledged messages archived under another id, e.g. {:?}",
            wrong_id.len(),
            &wrong_id[..wrong_id.len().min(5)]
        ));
    }
    // Each sender's posts in the order sent; messages stored more than once (a refused post
    // that was stored anyway, then posted again).
    for r in &runs {
        let sent_as: HashMap<&str, usize> = r
            .posts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.body.as_str(), i))
            .collect();
        let order: Vec<usize> = items
            .iter()
            .filter_map(|it| sent_as.get(it.body.as_deref()?).copied())
            .collect();
        if let Some(w) = order.windows(2).find(|w| w[0] >= w[1]) {
            problems.push(format!(
                "the archive has {}'s posts out of their send order: {:?} before {:?}",
                r.who(),
                r.posts[w[0]].body,
                r.posts[w[1]].body
            ));
        }
        let mut copies: HashMap<usize, usize> = HashMap::new();
        for i in &order {
            *copies.entry(r.posts[*i].n).or_default() += 1;
        }
        let twice: Vec<usize> = copies
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, _)| *n)
            .collect();
        if !twice.is_empty() {
            eprintln!(
                "{}: {} messages stored under two attempts (refused, yet stored, then posted \
                 again): {:?}",
                r.who(),
                twice.len(),
                &twice[..twice.len().min(10)]
            );
        }
    }
    let stored_refused = refused
        .iter()
        .filter(|p| by_body.contains_key(p.body.as_str()))
        .count();
    let stored_unanswered = unanswered
        .iter()
        .filter(|p| by_body.contains_key(p.body.as_str()))
        .count();
    let known: HashSet<&str> = posts.iter().map(|p| p.body.as_str()).collect();
    let strangers: Vec<&str> = items
        .iter()
        .filter_map(|it| it.body.as_deref())
        .filter(|b| !known.contains(b) && !b.ends_with(" is still here"))
        .collect();
    if !strangers.is_empty() {
        problems.push(format!(
            "the archive holds {} messages nobody sent, e.g. {:?}",
            strangers.len(),
            &strangers[..strangers.len().min(5)]
        ));
    }
    eprintln!(
        "archive: {} items; {stored_refused} of the {} refused and {stored_unanswered} of the {} \
         unanswered posts were stored anyway",
        items.len(),
        refused.len(),
        unanswered.len()
    );

    // The store itself: the room's rows are the archive, in seq order.
    let stored = match stored_messages(&pool, &room_name).await {
        Ok(rows) => {
            let sids: Vec<&str> = rows.iter().map(|(_, s, _)| s.as_str()).collect();
            let mam_ids: Vec<&str> = items.iter().map(|it| it.id.as_str()).collect();
            if sids != mam_ids {
                let first = sids
                    .iter()
                    .zip(mam_ids.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(sids.len().min(mam_ids.len()));
                problems.push(format!(
                    "the store has {} rows for {room_name}, the archive {} items; they differ \
                     from position {first} (store {:?}, archive {:?})",
                    rows.len(),
                    items.len(),
                    rows.get(first),
                    items.get(first).map(|i| (&i.id, &i.body))
                ));
            }
            let seqs: Vec<i64> = rows.iter().map(|(s, _, _)| *s).collect();
            let gaps = seqs.windows(2).filter(|w| w[1] != w[0] + 1).count();
            eprintln!(
                "store: {} rows, seq {:?}..={:?}, {gaps} gap(s) in seq",
                rows.len(),
                seqs.first(),
                seqs.last()
            );
            rows.len().to_string()
        }
        Err(e) => {
            problems.push(format!("reading the store with psql: {e:#}"));
            "?".into()
        }
    };

    eprintln!(
        "failover: kill→first ack after kill = {} ms; acked {}, refused {}, unanswered {} (posts, \
         retries included); stored {stored}; read back by the reconnected client {} (test time \
         {} s)",
        failover.map_or_else(|| "none".into(), |f| ms(f).to_string()),
        acked.len(),
        refused.len(),
        unanswered.len(),
        items.len(),
        t0.elapsed().as_secs()
    );
    eprintln!("pool after the failover:\n{}", pool.load_summary().await);
    if !problems.is_empty() {
        eprintln!("{}", pool.diagnostics());
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in the failover:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
