//! Suite tests of messages: batches, conflicts, last_seq, history slices, counts, stanza-id
//! lookup, and persistence across reopening.

use super::*;
use std::time::{Duration, Instant};

pub async fn append_batches_and_conflicts(cx: &Ctx) {
    let s = &*cx.store;
    let a = new_room(s, "a").await;
    let b = new_room(s, "b").await;
    s.append_messages(&[]).await.expect("empty batch");
    let first = vec![
        msg(a, 1, "x@h.org"),
        msg(b, 1, "y@h.org"),
        msg(a, 2, "x@h.org"),
        msg(b, 2, "y@h.org"),
        msg(a, 3, "y@h.org"),
    ];
    s.append_messages(&first).await.expect("append");
    assert_eq!(
        (
            s.last_seq(a).await.expect("a"),
            s.last_seq(b).await.expect("b")
        ),
        (3, 2)
    );
    let all = HistoryQuery {
        limit: 100,
        ..Default::default()
    };
    let got_a = s.history(a, &all).await.expect("history");
    assert_eq!(
        got_a,
        vec![first[0].clone(), first[2].clone(), first[4].clone()],
        "every field round-trips"
    );

    // a duplicate against the stored rows: nothing of the batch is written
    let bad = vec![
        msg(a, 4, "x@h.org"),
        msg(b, 3, "y@h.org"),
        msg(a, 3, "x@h.org"),
    ];
    assert!(matches!(
        s.append_messages(&bad).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        (
            s.last_seq(a).await.expect("a"),
            s.last_seq(b).await.expect("b")
        ),
        (3, 2)
    );
    // a duplicate inside the batch
    let dup = vec![
        msg(b, 3, "y@h.org"),
        msg(a, 5, "x@h.org"),
        msg(a, 5, "x@h.org"),
    ];
    assert!(matches!(
        s.append_messages(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.count_messages(a, &HistoryQuery::default())
            .await
            .expect("count"),
        3
    );
    assert_eq!(
        s.count_messages(b, &HistoryQuery::default())
            .await
            .expect("count"),
        2
    );
    // an unknown room
    assert!(matches!(
        s.append_messages(&[msg(a + b + 100, 1, "x@h.org")]).await,
        Err(StoreError::NotFound)
    ));
    // the store is still usable and the good messages go in
    s.append_messages(&bad[..2]).await.expect("retry");
    assert_eq!(
        (
            s.last_seq(a).await.expect("a"),
            s.last_seq(b).await.expect("b")
        ),
        (4, 3)
    );
    // seq need not be contiguous
    s.append_messages(&[msg(a, 10, "x@h.org")])
        .await
        .expect("gap");
    assert_eq!(s.last_seq(a).await.expect("a"), 10);
}

pub async fn last_seq_and_large_batches(cx: &Ctx) {
    let s = &*cx.store;
    let a = new_room(s, "big").await;
    let b = new_room(s, "small").await;
    assert_eq!(s.last_seq(a).await.expect("empty"), 0);
    // sizes around the backends' chunking (powers of two, 64) and beyond
    let mut next = 1;
    for size in [1usize, 3, 63, 64, 65, 100, 129, 300] {
        let batch: Vec<_> = (0..size)
            .map(|i| {
                let seq = next + i as i64;
                if i % 2 == 0 {
                    msg(a, seq, "p@q.org")
                } else {
                    msg(b, seq, "r@q.org")
                }
            })
            .collect();
        s.append_messages(&batch).await.expect("append");
        next += size as i64;
    }
    let total = next - 1;
    let counted = s
        .count_messages(a, &HistoryQuery::default())
        .await
        .expect("count")
        + s.count_messages(b, &HistoryQuery::default())
            .await
            .expect("count");
    assert_eq!(counted, total as u64);
    let rows = s
        .history(
            a,
            &HistoryQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .expect("history");
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        s.last_seq(a)
            .await
            .expect("a")
            .max(s.last_seq(b).await.expect("b")),
        total
    );
    // a conflicting row at the end of a multi-chunk batch rolls back every chunk
    let mut batch: Vec<_> = (0..150).map(|i| msg(b, 10_000 + i, "r@q.org")).collect();
    batch.push(msg(a, 1, "p@q.org"));
    assert!(matches!(
        s.append_messages(&batch).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.last_seq(b).await.expect("b") < 10_000);
}

/// Room `r` with seq 1..=20, ts = 1000 + 10*seq, odd seqs from alice, even from bob.
async fn history_room(s: &dyn Store) -> RoomId {
    let r = new_room(s, "hist").await;
    let noise = new_room(s, "noise").await;
    let mut batch: Vec<_> = (1..=20)
        .map(|i| {
            msg(
                r,
                i,
                if i % 2 == 1 {
                    "alice@h.org"
                } else {
                    "bob@h.org"
                },
            )
        })
        .collect();
    batch.extend((1..=30).map(|i| msg(noise, i, "alice@h.org")));
    s.append_messages(&batch).await.expect("append");
    r
}

pub async fn history_queries(cx: &Ctx) {
    let s = &*cx.store;
    let r = history_room(s).await;
    let bob = "bob@h.org";
    let cases: Vec<(HistoryQuery, Vec<i64>)> = vec![
        (hq(), (1..=20).collect()),
        (hq().limit(5), (1..=5).collect()),
        (hq().limit(5).newest(), (16..=20).collect()),
        (hq().limit(0), vec![]),
        (hq().limit(0).newest(), vec![]),
        (hq().after(5).limit(3), vec![6, 7, 8]),
        (hq().after(5).limit(3).newest(), vec![18, 19, 20]),
        (hq().before(10).limit(3).newest(), vec![7, 8, 9]),
        (hq().before(10).limit(3), vec![1, 2, 3]),
        (hq().after(5).before(10), vec![6, 7, 8, 9]),
        (hq().after(5).before(10).newest(), vec![6, 7, 8, 9]),
        (hq().after(10).before(5), vec![]),
        (hq().after(20), vec![]),
        (hq().before(1), vec![]),
        (hq().start(1050).end(1100), (5..=10).collect()),
        (hq().start(1051).end(1099), (6..=9).collect()),
        (hq().start(1150), (15..=20).collect()),
        (hq().end(1020), vec![1, 2]),
        (hq().start(1050).end(1150).limit(2).newest(), vec![14, 15]),
        (hq().start(1050).end(1150).limit(2), vec![5, 6]),
        (hq().sender(bob), (1..=10).map(|i| i * 2).collect()),
        (hq().sender(bob).limit(2).newest(), vec![18, 20]),
        (hq().sender(bob).after(3).before(12).limit(3), vec![4, 6, 8]),
        (hq().sender("nobody@h.org"), vec![]),
        (
            hq().sender(bob)
                .after(1)
                .before(19)
                .start(1040)
                .end(1160)
                .limit(2)
                .newest(),
            vec![14, 16],
        ),
        (
            hq().sender(bob)
                .after(1)
                .before(19)
                .start(1040)
                .end(1160)
                .limit(2),
            vec![4, 6],
        ),
    ];
    for (i, (query, want)) in cases.iter().enumerate() {
        let got = s.history(r, query).await.expect("history");
        assert_eq!(seqs(&got), *want, "case {i}: {query:?}");
        assert!(got.iter().all(|m| m.room_id == r));
    }
    assert!(s
        .history(r + 1000, &hq())
        .await
        .expect("unknown room")
        .is_empty());
}

pub async fn count_messages(cx: &Ctx) {
    let s = &*cx.store;
    let r = history_room(s).await;
    let cases: Vec<(HistoryQuery, u64)> = vec![
        (HistoryQuery::default(), 20),
        (hq().limit(1).newest(), 20),
        (hq().limit(0), 20),
        (hq().after(5).limit(2), 15),
        (hq().before(5), 4),
        (hq().start(1050).end(1100), 6),
        (hq().sender("alice@h.org"), 10),
        (hq().sender("alice@h.org").after(2).before(9), 3),
        (hq().after(10).before(5), 0),
    ];
    for (i, (query, want)) in cases.iter().enumerate() {
        let got = s.count_messages(r, query).await.expect("count");
        assert_eq!(got, *want, "case {i}: {query:?}");
    }
    assert_eq!(s.count_messages(r + 1000, &hq()).await.expect("count"), 0);
}

/// A big archive with several messages per timestamp: time filters land on the first/last
/// message of a timestamp, and counts above the exact-count limit come from the seq span.
pub async fn large_archive_time_bounds_and_counts(cx: &Ctx) {
    let s = &*cx.store;
    let r = new_room(s, "big").await;
    const N: i64 = 12_000;
    let batch: Vec<StoredMessage> = (1..=N)
        .map(|seq| {
            let mut m = msg(
                r,
                seq,
                if seq % 2 == 0 {
                    "even@h.org"
                } else {
                    "odd@h.org"
                },
            );
            m.ts = 100_000 + seq / 4; // four messages share each timestamp
            m
        })
        .collect();
    for chunk in batch.chunks(1000) {
        s.append_messages(chunk).await.expect("append");
    }
    // seq 4000..=4003 have ts 101_000: a start there begins at 4000, an end there stops at 4003.
    let page = s
        .history(r, &hq().start(101_000).limit(3))
        .await
        .expect("history");
    assert_eq!(seqs(&page), [4000, 4001, 4002]);
    let page = s
        .history(r, &hq().end(101_000).limit(2).newest())
        .await
        .expect("history");
    assert_eq!(seqs(&page), [4002, 4003]);
    let page = s
        .history(r, &hq().start(101_000).end(101_000).limit(10))
        .await
        .expect("history");
    assert_eq!(seqs(&page), [4000, 4001, 4002, 4003]);
    assert!(s
        .history(r, &hq().start(200_000).limit(10))
        .await
        .expect("history")
        .is_empty());
    let cases: Vec<(HistoryQuery, u64)> = vec![
        (hq(), 12_000),
        (hq().start(101_000), 8_001),
        (hq().start(101_000).end(101_000), 4),
        (hq().start(200_000), 0),
        (hq().end(99_000), 0),
        (hq().sender("even@h.org"), 6_000),
        (hq().sender("even@h.org").start(101_000).end(101_000), 2),
    ];
    for (i, (query, want)) in cases.iter().enumerate() {
        let got = s.count_messages(r, query).await.expect("count");
        assert_eq!(got, *want, "case {i}: {query:?}");
    }
}

pub async fn message_by_stanza_id(cx: &Ctx) {
    let s = &*cx.store;
    let a = new_room(s, "one").await;
    let b = new_room(s, "two").await;
    let mut in_b = msg(b, 1, "z@h.org");
    in_b.stanza_id = "shared-id".into();
    let mut in_a = msg(a, 7, "z@h.org");
    in_a.stanza_id = "shared-id".into();
    let batch = vec![
        msg(a, 1, "z@h.org"),
        msg(a, 2, "z@h.org"),
        in_a.clone(),
        in_b.clone(),
    ];
    s.append_messages(&batch).await.expect("append");
    assert_eq!(
        s.message_by_stanza_id(a, &batch[1].stanza_id)
            .await
            .expect("get"),
        Some(batch[1].clone())
    );
    assert_eq!(
        s.message_by_stanza_id(a, "shared-id").await.expect("get"),
        Some(in_a)
    );
    assert_eq!(
        s.message_by_stanza_id(b, "shared-id").await.expect("get"),
        Some(in_b)
    );
    assert_eq!(
        s.message_by_stanza_id(b, &batch[1].stanza_id)
            .await
            .expect("get"),
        None,
        "room-scoped"
    );
    assert_eq!(
        s.message_by_stanza_id(a, "missing").await.expect("get"),
        None
    );
}

pub async fn reopen_keeps_data(cx: &Ctx) {
    let url = &cx.url;
    let (room_id, cat) = {
        let s = open_store(url).await.expect("open");
        let cat = category("Kept");
        s.create_category(&cat).await.expect("category");
        let mut r = room("kept");
        r.category = Some(cat.id);
        let id = s.create_room(&r).await.expect("room");
        s.create_user(&user("keeper@h.org", 4)).await.expect("user");
        s.set_affiliation(id, &uid("keeper@h.org"), Affiliation::Owner, "")
            .await
            .expect("aff");
        let batch: Vec<_> = (1..=12).map(|i| msg(id, i, "keeper@h.org")).collect();
        s.append_messages(&batch).await.expect("append");
        (id, cat)
    };
    let s = open_store(url).await.expect("reopen");
    assert_eq!(s.backend(), cx.store.backend());
    let r = s.get_room("kept").await.expect("get").expect("room kept");
    assert_eq!((r.id, r.category), (room_id, Some(cat.id)));
    assert_eq!(s.get_category(cat.id).await.expect("category"), Some(cat));
    assert_eq!(
        s.get_user(&uid("keeper@h.org")).await.expect("user"),
        Some(user("keeper@h.org", 4))
    );
    assert_eq!(s.affiliations(room_id).await.expect("affs").len(), 1);
    assert_eq!(s.last_seq(room_id).await.expect("last"), 12);
    let h = s
        .history(
            room_id,
            &HistoryQuery {
                limit: 3,
                from_end: true,
                ..Default::default()
            },
        )
        .await
        .expect("history");
    assert_eq!(seqs(&h), vec![10, 11, 12]);
    // the first handle sees the same data
    assert_eq!(cx.store.last_seq(room_id).await.expect("last"), 12);
}

/// Prints how long `append_messages` takes for batches of 100 messages over 10 rooms.
pub async fn append_timing(cx: &Ctx) {
    let s = &*cx.store;
    let mut rooms = Vec::new();
    for i in 0..10 {
        rooms.push(new_room(s, &format!("t{i}")).await);
    }
    let runs = 50;
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs as i64 {
        let batch: Vec<_> = (0..100)
            .map(|i| msg(rooms[i % 10], run * 10 + (i / 10) as i64 + 1, "timer@h.org"))
            .collect();
        let started = Instant::now();
        s.append_messages(&batch).await.expect("append");
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / runs as u32;
    println!(
        "{}: append_messages(100 rows, 10 rooms) x{runs}: min {:?} median {:?} mean {:?} max {:?}",
        s.backend(),
        times[0],
        times[runs / 2],
        mean,
        times[runs - 1]
    );
}

fn audit(n: i64) -> palaver_core::compliance::ComplianceEvent {
    palaver_core::compliance::ComplianceEvent {
        at: n,
        room: "a".into(),
        actor: "x@h.org".into(),
        protocol: "xmpp".into(),
        kind: palaver_core::compliance::EventKind::Message,
        detail: format!("{{\"seq\":{n}}}"),
    }
}

/// A message and its compliance event commit together or not at all.
pub async fn messages_commit_with_outbox(cx: &Ctx) {
    let s = &*cx.store;
    let a = new_room(s, "a").await;
    s.append_messages_recorded(
        &[msg(a, 1, "x@h.org"), msg(a, 2, "x@h.org")],
        &[audit(1), audit(2)],
    )
    .await
    .expect("append");
    assert_eq!(s.last_seq(a).await.expect("seq"), 2);
    let queued: Vec<_> = s
        .outbox_peek(10)
        .await
        .expect("peek")
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(queued, vec![audit(1), audit(2)]);

    // seq 2 is taken: neither the new messages nor their events are written.
    let err = s
        .append_messages_recorded(
            &[msg(a, 3, "x@h.org"), msg(a, 2, "x@h.org")],
            &[audit(3), audit(4)],
        )
        .await
        .expect_err("duplicate seq");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.last_seq(a).await.expect("seq"), 2);
    assert_eq!(s.outbox_peek(10).await.expect("peek").len(), 2);

    // Deleting exact ids leaves the others.
    let ids: Vec<i64> = s
        .outbox_peek(10)
        .await
        .expect("peek")
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(s.outbox_delete(&ids[1..]).await.expect("delete"), 1);
    let left: Vec<_> = s
        .outbox_peek(10)
        .await
        .expect("peek")
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(left, vec![audit(1)]);
}
