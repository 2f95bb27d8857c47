"""The audit log on a real state directory: chain, head, key, tokens, privacy, concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import re
import stat
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from archivekeeper.act.audit import AuditError, AuditLog, VerifyResult, canonical
from archivekeeper.core.naming import normalize_customer

HELSINKI_SUMMER = timezone(timedelta(hours=3))


class StepClock:
    """An aware clock that moves one minute per call."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def fixed_clock() -> datetime:
    return datetime(2024, 5, 12, 10, 30, tzinfo=HELSINKI_SUMMER)


def make_log(state: Path) -> AuditLog:
    return AuditLog(state, StepClock(datetime(2024, 5, 12, 10, 0, tzinfo=HELSINKI_SUMMER)))


def write_records(log: AuditLog, count: int) -> None:
    customer = log.token("customer", "virtanen matti")
    for i in range(count):
        log.append("trash", customer=customer, files=i, bytes=1000 * i, rule="raw-one-year")


@pytest.fixture
def ten(tmp_path: Path) -> tuple[AuditLog, Path]:
    """A state dir with a 10-record log; returns the log and the path of audit.jsonl."""
    log = make_log(tmp_path)
    write_records(log, 10)
    return log, tmp_path / "audit.jsonl"


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# ------------------------------------------------------------------ the chain as written


def test_append_writes_sealed_chained_canonical_records(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    first = log.append("hold_add", kind="invoice", until="2027-01-31")
    second = log.append("approve", batch=7)

    raw = (tmp_path / "audit.jsonl").read_bytes()
    line1, line2 = raw.split(b"\n")[:2]
    assert raw.endswith(b"\n") and raw.count(b"\n") == 2
    assert json.loads(line1) == first and json.loads(line2) == second
    assert line1 == json.dumps(first, separators=(",", ":"), sort_keys=True).encode()
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["prev"] == "0" * 64
    assert second["prev"] == hashlib.sha256(line1).hexdigest()
    assert first["time"] == "2024-05-12T10:01:00.000+03:00"
    key = (tmp_path / "audit.key").read_bytes()
    body = {k: v for k, v in second.items() if k != "mac"}
    assert second["mac"] == hmac.new(key, canonical(body), hashlib.sha256).hexdigest()
    assert log.verify().ok


def test_key_is_32_private_bytes_and_shared_by_instances(tmp_path: Path) -> None:
    make_log(tmp_path).append("config_change", rules=3)
    key_path = tmp_path / "audit.key"
    assert len(key_path.read_bytes()) == 32
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    other = make_log(tmp_path)
    other.append("config_change", rules=4)
    assert other.verify().records == 2


def test_append_many_writes_one_continuous_batch(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append("trash", files=1)
    written = log.append_many([("trash", {"files": n}) for n in range(50)])
    assert [r["seq"] for r in written] == list(range(2, 52))
    assert [r["files"] for r in log.records()][1:] == list(range(50))
    assert log.verify() == VerifyResult(True, 51, None, "ok: 51 records, chain and head intact")


def test_append_many_refuses_the_whole_batch_if_one_record_is_bad(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.append("trash", files=1)
    before = (tmp_path / "audit.jsonl").read_bytes()
    with pytest.raises(ValueError):
        log.append_many([("trash", {"files": 2}), ("trash", {"path": "a/b.jpg"})])
    assert (tmp_path / "audit.jsonl").read_bytes() == before


def test_empty_or_missing_log_without_head_verifies(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    assert log.verify().ok and log.verify().records == 0
    (tmp_path / "audit.jsonl").write_bytes(b"")
    result = log.verify()
    assert (result.ok, result.records, result.first_bad) == (True, 0, None)


@pytest.mark.parametrize(
    "event, fields",
    [
        ("Trash", {}),
        ("trash done", {}),
        ("trash", {"seq": 5}),
        ("trash", {"mac": "0" * 64}),
        ("trash", {"when": datetime(2024, 1, 1, tzinfo=UTC)}),
        ("trash", {"ratio": float("nan")}),
    ],
)
def test_bad_event_names_reserved_keys_and_non_json_values_are_refused(
    tmp_path: Path, event: str, fields: dict
) -> None:
    with pytest.raises(ValueError):
        make_log(tmp_path).append(event, **fields)
    assert not (tmp_path / "audit.jsonl").exists()


def test_a_naive_clock_is_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, lambda: datetime(2024, 5, 12, 10, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="aware"):
        log.append("trash", files=1)


def test_records_since_filters_by_local_date_and_skips_damage(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, StepClock(datetime(2024, 5, 11, 23, 58, tzinfo=HELSINKI_SUMMER)))
    for n in range(4):  # 23:59 on the 11th, then 00:00, 00:01, 00:02 on the 12th
        log.append("trash", files=n)
    path = tmp_path / "audit.jsonl"
    lines = lines_of(path)
    path.write_bytes(lines[0] + b"{broken\n" + b"".join(lines[1:]) + b'{"seq": 9')
    assert [r["files"] for r in log.records()] == [0, 1, 2, 3]
    assert [r["files"] for r in log.records(since=date(2024, 5, 12))] == [1, 2, 3]


# ------------------------------------------------------------------ tampering is detected


def line_of_byte(data: bytes, index: int) -> int:
    return data.count(b"\n", 0, index) + 1


@pytest.mark.parametrize("mask", [0x01, 0x20, 0xFF])
def test_flipping_any_byte_of_the_log_is_detected_on_its_line(ten, mask: int) -> None:
    log, path = ten
    original = path.read_bytes()
    assert original.count(b"\n") == 10
    # One byte is changed in place and put back, so each verify sees exactly one flip.
    with path.open("r+b", buffering=0) as f:
        for index, byte in enumerate(original):
            os.pwrite(f.fileno(), bytes([byte ^ mask]), index)
            result = log.verify()
            os.pwrite(f.fileno(), bytes([byte]), index)
            assert not result.ok, index
            assert result.first_bad == line_of_byte(original, index), (index, result.message)
    assert path.read_bytes() == original
    assert log.verify().ok


def test_flipping_any_byte_of_the_head_is_detected_at_the_end(ten) -> None:
    log, path = ten
    head_path = path.with_name("audit.head")
    original = head_path.read_bytes()
    for index in range(len(original)):
        damaged = bytearray(original)
        damaged[index] ^= 0x01
        head_path.write_bytes(bytes(damaged))
        result = log.verify()
        assert (result.ok, result.first_bad) == (False, 11), index
        assert result.message.startswith("end of log:")
    head_path.write_bytes(original)
    assert log.verify().ok


def test_removing_a_record_is_detected(ten) -> None:
    log, path = ten
    lines = lines_of(path)
    del lines[4]
    path.write_bytes(b"".join(lines))
    result = log.verify()
    assert (result.ok, result.first_bad, result.records) == (False, 5, 4)
    assert result.message == "line 5: seq 6 follows 4 (record removed, inserted or reordered)"


def test_duplicating_a_record_is_detected(ten) -> None:
    log, path = ten
    lines = lines_of(path)
    lines.insert(3, lines[2])
    path.write_bytes(b"".join(lines))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 4)
    assert "seq 3 follows 3" in result.message


def test_reordering_records_is_detected(ten) -> None:
    log, path = ten
    lines = lines_of(path)
    lines[6], lines[7] = lines[7], lines[6]
    path.write_bytes(b"".join(lines))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 7)


def test_cutting_the_last_record_short_is_detected(ten) -> None:
    log, path = ten
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    result = log.verify()
    assert (result.ok, result.first_bad, result.records) == (False, 10, 9)
    assert result.message.startswith("line 10: ")


def test_deleting_the_whole_last_line_is_detected_by_the_head(ten) -> None:
    log, path = ten
    path.write_bytes(b"".join(lines_of(path)[:-1]))
    result = log.verify()
    assert (result.ok, result.first_bad, result.records) == (False, 10, 9)
    assert result.message == (
        "end of log: head says seq 10, log ends at 9 (records removed from the end)"
    )


def test_deleting_the_last_line_and_rewriting_the_head_without_the_key_is_detected(ten) -> None:
    log, path = ten
    lines = lines_of(path)[:-1]
    path.write_bytes(b"".join(lines))
    forged_body = {"seq": 9, "hash": hashlib.sha256(lines[-1][:-1]).hexdigest()}
    forged_mac = hmac.new(b"\0" * 32, canonical(forged_body), hashlib.sha256).hexdigest()
    path.with_name("audit.head").write_bytes(canonical({**forged_body, "mac": forged_mac}) + b"\n")
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 10)
    assert "mac mismatch (head file changed)" in result.message


def test_deleting_the_head_is_detected(ten) -> None:
    log, path = ten
    path.with_name("audit.head").unlink()
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 11)
    assert "audit.head is missing" in result.message


def test_deleting_the_log_with_a_head_left_is_detected(ten) -> None:
    log, path = ten
    path.unlink()
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 1)
    assert "missing but head says seq 10" in result.message


def test_an_inserted_forged_record_is_detected(ten) -> None:
    log, path = ten
    lines = lines_of(path)
    fifth = json.loads(lines[4])
    forged = {
        "seq": 6,
        "time": fifth["time"],
        "event": "restore",
        "prev": hashlib.sha256(lines[4][:-1]).hexdigest(),
        "files": 1,
    }
    forged["mac"] = hmac.new(os.urandom(32), canonical(forged), hashlib.sha256).hexdigest()
    lines.insert(5, canonical(forged) + b"\n")
    path.write_bytes(b"".join(lines))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 6)
    assert result.message == "line 6: mac mismatch (record changed)"


def test_a_re_serialised_but_unchanged_record_is_detected_on_its_line(ten) -> None:
    log, path = ten
    lines = lines_of(path)
    lines[2] = json.dumps(json.loads(lines[2]), indent=None).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 3)
    assert "canonical" in result.message


def test_a_wrong_key_file_fails_every_mac(ten) -> None:
    log, path = ten
    key_path = path.with_name("audit.key")
    key_path.write_bytes(os.urandom(32))
    result = make_log(path.parent).verify()
    assert (result.ok, result.first_bad) == (False, 1)
    assert result.message == "line 1: mac mismatch (record changed)"


def test_a_key_readable_by_others_is_refused(ten) -> None:
    log, path = ten
    key_path = path.with_name("audit.key")
    key_path.chmod(0o644)
    fresh = make_log(path.parent)
    with pytest.raises(AuditError, match="mode 0644"):
        fresh.append("trash", files=1)
    with pytest.raises(AuditError, match="chmod 600"):
        fresh.verify()
    with pytest.raises(AuditError):
        fresh.token("customer", "x")
    assert len(lines_of(path)) == 10


def test_a_symlinked_key_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.key"
    elsewhere.write_bytes(os.urandom(32))
    elsewhere.chmod(0o600)
    state = tmp_path / "state"
    state.mkdir()
    (state / "audit.key").symlink_to(elsewhere)
    with pytest.raises(AuditError, match="symlink"):
        make_log(state).append("trash", files=1)


def test_a_missing_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="does not exist"):
        make_log(tmp_path / "nowhere").append("trash", files=1)


def test_a_missing_key_is_not_replaced_while_a_log_exists(ten) -> None:
    log, path = ten
    key_path = path.with_name("audit.key")
    key_path.unlink()
    fresh = make_log(path.parent)
    with pytest.raises(AuditError, match="restore the key"):
        fresh.append("trash", files=1)
    assert not key_path.exists()
    result = fresh.verify()
    assert (result.ok, result.first_bad) == (False, 1)
    assert "audit.key is missing" in result.message


def test_append_refuses_to_chain_onto_a_log_whose_end_was_removed(ten) -> None:
    log, path = ten
    path.write_bytes(b"".join(lines_of(path)[:-1]))
    with pytest.raises(AuditError, match="records were removed"):
        make_log(path.parent).append("trash", files=1)
    assert len(lines_of(path)) == 9


def test_append_refuses_to_chain_onto_a_last_record_cut_short(ten) -> None:
    log, path = ten
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(AuditError):
        make_log(path.parent).append("trash", files=1)


def test_a_torn_write_from_a_crash_is_repaired_and_audited(ten) -> None:
    log, path = ten
    intact = path.read_bytes()
    with path.open("ab") as f:  # what a crash in the middle of the 11th write leaves
        f.write(b'{"batch":3,"event":"tra')
    assert log.verify().first_bad == 11

    record = make_log(path.parent).append("trash", files=1)

    assert record["seq"] == 12
    data = path.read_bytes()
    assert data.startswith(intact)
    assert json.loads(data.splitlines()[10]) | {"time": None, "mac": None} == {
        "seq": 11,
        "event": "audit_tail_repaired",
        "dropped_bytes": 23,
        "prev": hashlib.sha256(intact.splitlines()[-1]).hexdigest(),
        "time": None,
        "mac": None,
    }
    assert log.verify().ok and log.verify().records == 12


def test_a_head_left_behind_by_a_crash_is_tolerated_and_caught_up(ten) -> None:
    log, path = ten
    head_path = path.with_name("audit.head")
    old_head = head_path.read_bytes()
    log.append("trash", files=1)
    head_path.write_bytes(old_head)  # the crash came between the log's fsync and the rename

    result = log.verify()
    assert (result.ok, result.records) == (True, 11)
    assert "lags by 1" in result.message
    log.append("trash", files=2)
    assert log.verify().message == "ok: 12 records, chain and head intact"


# ------------------------------------------------------------------ tokens and privacy


def test_tokens_are_keyed_stable_and_shaped_by_kind(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    customer = log.token("customer", "mäkinen anna")
    assert re.fullmatch(r"c_[0-9a-f]{16}", customer)
    assert re.fullmatch(r"s_[0-9a-f]{16}", log.token("shoot", "studio:2024-05-12 A"))
    assert re.fullmatch(r"p_[0-9a-f]{16}", log.token("path", "2024-05-12 A/x.jpg"))
    assert make_log(tmp_path).token("customer", "mäkinen anna") == customer
    assert log.token("customer", "Ma\u0308kinen_Anna") == customer
    assert log.token("path", "mäkinen anna")[2:] != customer[2:]
    other_state = tmp_path / "other"
    other_state.mkdir()
    assert make_log(other_state).token("customer", "mäkinen anna") != customer
    with pytest.raises(ValueError):
        log.token("volume", "studio")


@pytest.mark.parametrize(
    "fields",
    [
        {"customer": "Mäkinen Anna"},
        {"shoot": "studio:2024-05-12 Mäkinen Anna"},
        {"path": "2024-05-12 Mäkinen Anna/RAW/IMG_0001.CR2"},
        {"name": "Mäkinen Anna"},
        {"old_path": "2024-05-12 Mäkinen Anna"},
        {"paths": ["p_0123456789abcdef", "2024-05-12 Mäkinen Anna"]},
        {"items": [{"customer": "Mäkinen Anna"}]},
        {"customer": "c_0123456789ABCDEF"},
        {"customer": None},
    ],
)
def test_the_guard_refuses_names_and_paths_in_clear(tmp_path: Path, fields: dict) -> None:
    log = make_log(tmp_path)
    with pytest.raises(ValueError, match="must hold a token") as refused:
        log.append("trash", **fields)
    assert "Mäkinen" not in str(refused.value)
    assert not (tmp_path / "audit.jsonl").exists()


def test_no_customer_name_or_path_reaches_the_log_or_head(tmp_path: Path) -> None:
    name = "Mäkinen Anna"
    folder = "2024-05-12 Mäkinen Anna"
    log = make_log(tmp_path)
    customer = log.token("customer", normalize_customer(name))
    shoot = log.token("shoot", f"studio:{folder}")
    files = [log.token("path", f"{folder}/RAW/IMG_{n:04d}.CR2") for n in range(3)]
    log.append("hold_add", customer=customer, kind="invoice", until="2027-01-31")
    log.append_many(
        [("trash", {"shoot": shoot, "customer": customer, "paths": files, "bytes": 3 << 20})]
        + [("trash_done", {"shoot": shoot, "files": 3})]
    )
    log.append("erase", customer=customer, shoots=[shoot], reason="art17")
    with pytest.raises(ValueError):
        log.append("refusal", customer=name)

    raw = (tmp_path / "audit.jsonl").read_bytes() + (tmp_path / "audit.head").read_bytes()
    assert customer.encode() in raw and shoot.encode() in raw
    needles = {"Mäkinen", "mäkinen", "MÄKINEN", "Makinen", "makinen", "Anna", "anna", folder}
    needles |= {unicodedata.normalize("NFD", n) for n in needles}
    for needle in needles:
        assert needle.encode("utf-8") not in raw, needle
        assert needle.encode("unicode_escape") not in raw, needle
    assert log.verify().records == 4


# ------------------------------------------------------------------ concurrency


def _append_worker(state: str, label: int, count: int) -> None:
    log = AuditLog(Path(state), fixed_clock)
    for n in range(count):
        log.append("touch", worker=label, n=n)


def test_two_processes_appending_at_once_keep_one_valid_chain(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_worker, args=(str(tmp_path), label, 200)) for label in (1, 2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]

    result = make_log(tmp_path).verify()
    assert (result.ok, result.records) == (True, 400), result.message
    by_worker: dict[int, list[int]] = {1: [], 2: []}
    for record in make_log(tmp_path).records():
        by_worker[record["worker"]].append(record["n"])
    assert by_worker == {1: list(range(200)), 2: list(range(200))}
