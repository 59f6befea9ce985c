"""The audit trail as evidence: served with its verdict, verified and exported by the
CLI, and any edit, removal or swap of a stored event detected; and, through the anchor
ledger, a trail cut short or deleted, a ledger edited, with no false alarm from a crash
between the trail's write and the anchor's, from a verification racing appends, or from
retention's purge."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest

from document_share.retention import purge
from document_share.storage import BlobStore
from sessions.audit import GENESIS, AuditLog, anchor_hash, event_hash
from tests.harness import run_cli, running_server
from tests.helpers import ASSETS, open_call, upload


@pytest.fixture
async def finished_call(tmp_path):
    """A call with a document, hung up; its trail's path."""
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk, _staff, sid = await open_call(server, stack)
        _, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
        assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
        yield server, sid, doc, server.settings.audit_dir / f"{sid}.jsonl"


def rewrite(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def edit_one(lines: list[str]) -> list[str]:
    event = json.loads(lines[2])
    event["data"]["edited"] = True
    return [*lines[:2], json.dumps(event), *lines[3:]]


def edit_and_rechain(lines: list[str]) -> list[str]:
    """Edit event 3 and recompute every hash after it: a chain that holds again."""
    events = [json.loads(line) for line in lines]
    events[2]["data"]["edited"] = True
    prev = events[1]["hash"]
    for event in events[2:]:
        event["prev_hash"] = prev
        event["hash"] = prev = event_hash(event)
    return [json.dumps(e) for e in events]


@pytest.mark.parametrize(
    "tamper,words",
    [
        (edit_one, "was altered"),
        (lambda lines: [*lines[:2], *lines[3:]], "removed"),
        (lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]], "reordered"),
        (lambda lines: [*lines[:2], "{not json", *lines[3:]], "not JSON"),
        (lambda lines: lines[:-1], "removed from its end"),
        (lambda lines: lines[:2], "removed from its end"),
        (lambda lines: [""], "the trail has no events but the anchor records event"),
        (edit_and_rechain, "the trail was rewritten"),
    ],
    ids=["edit", "delete", "swap", "garbage", "truncate-last", "truncate-many", "empty",
         "rechain"],
)
async def test_tampering_is_detected_by_audit_verify_and_the_api(finished_call, tamper, words):
    server, sid, _doc, path = finished_call
    before = run_cli(server.settings.data_dir, "audit", "verify", sid)
    assert before.returncode == 0 and "chain verified" in before.stdout, before.stdout
    rewrite(path, tamper)
    after = run_cli(server.settings.data_dir, "audit", "verify", sid)
    assert after.returncode == 1 and "BROKEN" in after.stdout and words in after.stdout, (
        after.stdout)
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {await server.login('sup')}"}
        async with http.get(f"{server.url}/api/v1/sessions/{sid}/audit",
                            headers=headers) as resp:
            body = await resp.json()
    assert resp.status == 200 and body["verified"] is False and words in body["break"]


async def test_the_api_serves_the_trail_to_supervisors_only(finished_call):
    server, sid, _doc, _path = finished_call
    async with aiohttp.ClientSession() as http:
        for who, status in (("sup", 200), ("alice", 403)):
            headers = {"Authorization": f"Bearer {await server.login(who)}"}
            async with http.get(f"{server.url}/api/v1/sessions/{sid}/audit",
                                headers=headers) as resp:
                assert resp.status == status
                if status == 200:
                    body = await resp.json()
                    assert body["verified"] is True
                    assert [e["seq"] for e in body["events"]] == list(
                        range(1, len(body["events"]) + 1))
                    assert body["events"][-1]["type"] == "session.closed"


async def test_export_writes_the_chain_and_the_files_hashes(finished_call, tmp_path):
    server, sid, doc, _path = finished_call
    out = tmp_path / "evidence.json"
    result = run_cli(server.settings.data_dir, "audit", "export", sid, "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["verified"] is True and report["session_id"] == sid
    assert {"kind": "document", "id": doc["document_id"], "sha256": doc["sha256"],
            "present": True, "intact": True} in report["files"]
    assert report["events"][-1]["type"] == "session.closed"
    missing = run_cli(server.settings.data_dir, "audit", "verify", "no-such-session")
    assert missing.returncode == 2 and "no audit trail" in missing.stderr


async def test_a_deleted_trail_is_detected_by_verify_verify_all_export_and_the_api(
    finished_call, tmp_path
):
    server, sid, _doc, path = finished_call
    data_dir = server.settings.data_dir
    last = json.loads(path.read_text().splitlines()[-1])
    path.unlink()
    after = run_cli(data_dir, "audit", "verify", sid)
    assert after.returncode == 1, after.stdout + after.stderr
    assert "BROKEN: the trail file is missing" in after.stdout
    assert f"records event {last['seq']} (hash {last['hash']}" in after.stdout
    everything = run_cli(data_dir, "audit", "verify-all")
    assert everything.returncode == 1 and f"session {sid}: BROKEN" in everything.stdout
    out = tmp_path / "evidence.json"
    exported = run_cli(data_dir, "audit", "export", sid, "--out", str(out))
    assert exported.returncode == 1 and "BROKEN" in exported.stdout
    report = json.loads(out.read_text())
    assert report["verified"] is False and "missing" in report["break"]
    assert report["anchor"]["seq"] == last["seq"]
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {await server.login('sup')}"}
        async with http.get(f"{server.url}/api/v1/sessions/{sid}/audit",
                            headers=headers) as resp:
            body = await resp.json()
    assert resp.status == 200 and body["verified"] is False and "missing" in body["break"]


async def test_verify_and_export_report_the_anchor_and_the_ledger_head(finished_call, tmp_path):
    server, sid, _doc, path = finished_call
    data_dir = server.settings.data_dir
    events = [json.loads(line) for line in path.read_text().splitlines()]
    ok = run_cli(data_dir, "audit", "verify", sid)
    assert ok.returncode == 0 and f"anchored at event {len(events)}" in ok.stdout, ok.stdout
    everything = run_cli(data_dir, "audit", "verify-all")
    assert everything.returncode == 0 and "0 broken" in everything.stdout, everything.stdout
    out = tmp_path / "evidence.json"
    assert run_cli(data_dir, "audit", "export", sid, "--out", str(out)).returncode == 0
    report = json.loads(out.read_text())
    assert report["anchor"]["seq"] == len(events)
    assert report["anchor"]["hash"] == events[-1]["hash"]
    assert report["unanchored_events"] == 0
    assert report["ledger_head"]["hash"] in everything.stdout


# The ledger and its failure windows, on an AuditLog of their own (no server).


def trail(tmp_path: Path, sid: str = "s1", events: int = 5, clock=None) -> AuditLog:
    log = AuditLog(tmp_path / "audit", **({"clock": clock} if clock else {}))
    for i in range(events):
        log.append_sync(sid, "step", {"i": i})
    return log


def ledger_lines(log: AuditLog) -> list[tuple[Path, list[str]]]:
    return [(p, p.read_text().splitlines()) for p in log.anchors.files()]


def test_every_append_is_anchored_in_a_chained_ledger(tmp_path):
    log = trail(tmp_path, "s1", 3)
    log.append_sync("s2", "step", {})
    log.append_sync("s1", "step", {})
    [(_path, lines)] = ledger_lines(log)
    entries = [json.loads(line) for line in lines]
    assert [(e["n"], e["sid"], e["seq"]) for e in entries] == [
        (1, "s1", 1), (2, "s1", 2), (3, "s1", 3), (4, "s2", 1), (5, "s1", 4)]
    assert entries[0]["prev"] == GENESIS
    assert all(e["hash"] == anchor_hash(e) for e in entries)
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    verdict = log.verify_sync("s1")
    assert verdict.verified and verdict.anchor["n"] == 5 and verdict.unanchored == 0
    assert verdict.anchor["event"] == verdict.events[-1]["hash"]


def test_a_crash_between_the_event_and_its_anchor_is_not_a_false_alarm(tmp_path):
    log = trail(tmp_path, "s1", 3)
    real_append = log.anchors.append
    seen = []

    def crash_after_checking(sid, seq, hash_, at):
        # The anchor is written only once the event is in the trail (the order that
        # makes a crash leave the trail ahead of its anchor, never behind)...
        last = json.loads((log.directory / f"{sid}.jsonl").read_text().splitlines()[-1])
        seen.append((last["seq"], last["hash"]) == (seq, hash_))
        raise SystemExit("power cut")  # ...and here the process dies before writing it

    log.anchors.append = crash_after_checking
    with pytest.raises(SystemExit):
        log.append_sync("s1", "step", {"i": "lost anchor"})
    assert seen == [True]
    log.anchors.append = real_append
    restarted = AuditLog(tmp_path / "audit")
    verdict = restarted.verify_sync("s1")
    assert verdict.broken is None and verdict.verified, verdict.broken
    assert verdict.anchor["seq"] == 3 and verdict.unanchored == 1
    # The next append anchors the head again.
    restarted.append_sync("s1", "step", {})
    verdict = restarted.verify_sync("s1")
    assert verdict.verified and verdict.anchor["seq"] == 5 and verdict.unanchored == 0


def test_a_first_event_without_its_anchor_is_not_a_false_alarm(tmp_path):
    log = AuditLog(tmp_path / "audit")
    log.anchors.append = lambda *a: (_ for _ in ()).throw(SystemExit("power cut"))
    with pytest.raises(SystemExit):
        log.append_sync("s1", "session.created", {})
    verdict = AuditLog(tmp_path / "audit").verify_sync("s1")
    assert verdict.verified and verdict.anchor is None and verdict.unanchored == 1


def test_verifying_while_others_append_never_alarms(tmp_path):
    log = trail(tmp_path, "s1", 1)
    done = threading.Event()
    problems: list[str] = []

    def appender(sid):
        other = AuditLog(tmp_path / "audit")
        for i in range(150):
            other.append_sync(sid, "step", {"i": i})

    def verifier():
        reader = AuditLog(tmp_path / "audit")
        while not done.is_set():
            verdict = reader.verify_sync("s1")
            if verdict.broken:
                problems.append(verdict.broken)

    threads = [threading.Thread(target=appender, args=(sid,)) for sid in ("s1", "s2")]
    check = threading.Thread(target=verifier)
    check.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    check.join()
    assert problems == []
    assert log.verify_sync("s1").verified and len(log.read_sync("s1")) == 151


def test_several_processes_append_to_one_ledger(tmp_path):
    code = (
        "import sys; from pathlib import Path; from sessions.audit import AuditLog\n"
        "log = AuditLog(Path(sys.argv[1]))\n"
        "for i in range(40): log.append_sync(sys.argv[2], 'step', {'i': i})\n"
    )
    root = Path(__file__).parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "audit"), f"p{k}"],
                              cwd=root) for k in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    scan, verdicts = AuditLog(tmp_path / "audit").verify_all_sync()
    assert scan.problem is None and scan.entries == 160 and scan.head["n"] == 160
    assert [(v.session_id, v.verified, v.anchor["seq"]) for v in verdicts] == [
        (f"p{k}", True, 40) for k in range(4)]


def tamper_ledger(log: AuditLog, change) -> None:
    [(path, lines)] = ledger_lines(log)
    path.write_text("\n".join(change(lines)) + "\n")


def as_line(entry: dict) -> str:
    """A ledger entry as the ledger writes it (any other spelling is not an entry)."""
    return json.dumps(entry, separators=(",", ":"))


def edit_entry(index, **changes):
    def change(lines):
        entry = json.loads(lines[index])
        entry.update(changes)
        return [*lines[:index], as_line(entry), *lines[index + 1:]]
    return change


def rehash_last_anchor_of_s1(lines: list[str], s1: Path) -> list[str]:
    """Point s1's last anchor (entry 7) at the trail's new last event, with a correct
    hash for the entry itself; but not for the entry after it (8, s2's)."""
    entry = json.loads(lines[6])
    entry["seq"], entry["event"] = 3, json.loads(s1.read_text().splitlines()[-1])["hash"]
    entry["hash"] = anchor_hash(entry)
    return [*lines[:6], as_line(entry), *lines[7:]]


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda lines, s1: rehash_last_anchor_of_s1(lines, s1), "does not follow entry 7"),
        (lambda lines, s1: edit_entry(6, seq=3)(lines), "entry 7 (2026-09-21.jsonl line 7) "
                                                       "was altered"),
        (lambda lines, s1: [*lines[:6], *lines[7:]], "removed, inserted or reordered"),
        (lambda lines, s1: [*lines[:5], lines[6], lines[5], lines[7]],
         "removed, inserted or reordered"),
        (lambda lines, s1: [*lines[:7], "{garbage", lines[7]], "not a ledger entry"),
    ],
    ids=["rehash-anchor", "edit-anchor", "drop-anchor", "swap", "garbage"],
)
def test_tampering_with_the_ledger_is_detected(tmp_path, change, words):
    """s1's trail loses its last event, and the ledger is edited to hide it: the
    ledger's own chain, from s1's anchor to its head, shows it."""
    clock = iter(range(1_790_000_000, 1_800_000_000)).__next__  # a fixed day: 2026-09-21
    log = trail(tmp_path, "s1", 3, clock=clock)
    trail(tmp_path, "s2", 3, clock=clock)
    log.append_sync("s1", "last", {})  # ledger entry 7
    log.append_sync("s2", "after", {})  # ledger entry 8
    s1 = log.directory / "s1.jsonl"
    s1.write_text("\n".join(s1.read_text().splitlines()[:-1]) + "\n")  # cut the last
    assert "removed from its end" in log.verify_sync("s1").broken
    tamper_ledger(log, lambda lines: change(lines, s1))
    broken = log.verify_sync("s1").broken
    assert broken and "anchor ledger" in broken and words in broken, broken
    scan, _ = log.verify_all_sync()
    assert scan.problem and words in scan.problem, scan.problem


@pytest.mark.parametrize(
    "change,words",
    [
        (edit_entry(1, seq=1), "entry 2 (2026-09-21.jsonl line 2) was altered"),
        (lambda lines: lines[1:], "beginning is missing: it starts at entry 2"),
    ],
    ids=["edit-older", "drop-first"],
)
def test_verify_all_checks_the_ledger_back_to_its_first_entry(tmp_path, change, words):
    """What lies before a session's anchor does not vouch for it, so verifying one
    session stops there; verify-all reads on to the first entry."""
    clock = iter(range(1_790_000_000, 1_800_000_000)).__next__
    log = trail(tmp_path, "s1", 3, clock=clock)
    trail(tmp_path, "s2", 3, clock=clock)
    tamper_ledger(log, change)
    assert log.verify_sync("s2").verified
    scan, _ = log.verify_all_sync()
    assert scan.problem and words in scan.problem, scan.problem
    result = run_cli(tmp_path, "audit", "verify-all")
    assert result.returncode == 1 and f"ledger: BROKEN: {scan.problem}" in result.stdout


def test_dropping_the_ledgers_last_entries_is_seen_only_against_a_copy_of_its_head(tmp_path):
    """The ledger's own end has nothing after it to vouch for it: with its last entry
    removed, s1 looks one event ahead of its anchor, as after a crash. A copy of the
    head kept elsewhere (an export, a mail of verify-all) no longer matches."""
    log = trail(tmp_path, "s1", 3)
    pinned = log.verify_sync("s1").ledger_head
    s1 = log.directory / "s1.jsonl"
    s1.write_text("\n".join(s1.read_text().splitlines()[:-1]) + "\n")
    tamper_ledger(log, lambda lines: lines[:-1])
    verdict = log.verify_sync("s1")
    assert verdict.verified and verdict.unanchored == 0
    assert verdict.ledger_head["n"] == pinned["n"] - 1


def test_a_deleted_day_file_of_the_ledger_is_detected(tmp_path):
    day = 86400
    times = iter([1_790_000_000 + k * day for k in (0, 0, 1, 1, 2, 2)])
    log = AuditLog(tmp_path / "audit", clock=lambda: next(times))
    for sid in ("s1", "s1", "s2", "s2", "s3", "s3"):
        log.append_sync(sid, "step", {})
    files = log.anchors.files()
    assert [p.name for p in files] == ["2026-09-21.jsonl", "2026-09-22.jsonl",
                                       "2026-09-23.jsonl"]
    assert log.verify_sync("s1").verified
    files[1].unlink()
    assert "does not follow" in log.verify_sync("s1").broken
    assert log.verify_sync("s3").verified  # nothing after its anchor was touched


def test_the_ledger_never_goes_back_to_an_older_day_file(tmp_path):
    times = iter([1_790_086_400.0, 1_790_000_000.0])  # the second node's clock is behind
    log = AuditLog(tmp_path / "audit", clock=lambda: next(times))
    log.append_sync("s1", "step", {})
    log.append_sync("s2", "step", {})
    assert [p.name for p in log.anchors.files()] == ["2026-09-22.jsonl"]
    assert log.verify_all_sync()[0].problem is None


def test_a_torn_last_ledger_line_is_ignored_then_cut_off(tmp_path):
    log = trail(tmp_path, "s1", 2)
    [(path, _lines)] = ledger_lines(log)
    with path.open("a") as f:
        f.write('{"n":3,"sid":"s1","se')  # a crash in the middle of a write
    assert log.verify_sync("s1").verified
    log.append_sync("s1", "step", {})
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["n"] for e in entries] == [1, 2, 3]
    assert log.verify_all_sync()[0].problem is None and log.verify_sync("s1").verified


def test_a_trail_older_than_the_ledger_verifies_on_its_chain(tmp_path):
    log = trail(tmp_path, "old", 3)
    for path in log.anchors.files():
        path.unlink()  # as if written before there was a ledger
    fresh = AuditLog(tmp_path / "audit")
    verdict = fresh.verify_sync("old")
    assert verdict.verified and verdict.anchor is None
    fresh.append_sync("new", "step", {})
    assert fresh.verify_sync("old").verified  # the ledger starts at entry 1: no gap
    assert not fresh.verify_sync("nothing").found


def test_a_purged_session_still_verifies_and_its_purge_event_is_anchored(tmp_path):
    blobs = BlobStore(tmp_path / "documents")
    sha256 = blobs.put_bytes(b"an old scan")
    assert hashlib.sha256(b"an old scan").hexdigest() == sha256
    log = AuditLog(tmp_path / "audit", clock=lambda: 1_700_000_000.0)
    log.append_sync("old", "session.created", {})
    log.append_sync("old", "document.added", {"document_id": "d1", "sha256": sha256})
    log.append_sync("old", "session.closed", {})
    report = purge(AuditLog(tmp_path / "audit"), blobs, tmp_path / "documents" / "pages",
                   older_than_s=86400)
    assert report.sessions == ["old"] and report.files == [sha256]
    assert not blobs.path_of(sha256).exists()
    verdict = log.verify_sync("old")
    assert verdict.verified, verdict.broken
    assert verdict.events[-1]["type"] == "documents.purged"
    assert verdict.anchor["seq"] == 4 and verdict.unanchored == 0
    # Its trail stays, and still may not lose its end.
    path = log.directory / "old.jsonl"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    assert "removed from its end" in log.verify_sync("old").broken


async def test_a_torn_last_line_is_cut_and_the_chain_goes_on(tmp_path):
    """A crash while writing an event (never acknowledged) leaves half a line: the next
    append cuts it off and chains onto the last whole event."""
    log = AuditLog(tmp_path)
    await log.append("s1", "session.queued", {"kiosk_id": "k1"})
    with (tmp_path / "s1.jsonl").open("ab") as f:
        f.write(b'{"seq":2,"at":1.0,"type":"kiosk.lo')  # the crash
    await log.append("s1", "kiosk.lost", {})
    events = log.read_sync("s1")
    assert [e["type"] for e in events] == ["session.queued", "kiosk.lost"]
    assert log.verify_sync("s1").verified
