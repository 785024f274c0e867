"""`ledger show` and `ledger replay` through the real console script (issue 4's CLI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from events.envelope import Source
from events.ids import seed_id
from events.intake import new_event
from events.log import NewEvent
from events.payloads import (
    EventCorrected,
    InvestmentCommitted,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
)
from events.seed import SEED_URL, seed_events
from events.sqlite import SQLiteEventLog
from projections import ViewSpec, build

LEDGER = str(Path(sys.executable).with_name("ledger"))
ENCODER = msgspec.json.Encoder(decimal_format="string")


def ledger(db: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [LEDGER, "--database", str(db), *args], capture_output=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("show") / "ledger.db"
    log = SQLiteEventLog(db)
    try:
        log.append(seed_events())
    finally:
        log.close()
    return db


def in_process(db: Path, spec: ViewSpec) -> object:
    log = SQLiteEventLog(db)
    try:
        return build(log.iter_events(upto=spec.at_position), spec)
    finally:
        log.close()


def plain(value: object) -> object:
    return json.loads(ENCODER.encode(value))


def seeded_and_corrected(
    db: Path, corrects: str, replacement: dict[str, Any], stream: str, occurred_on: str
) -> None:
    """The seed, then one correction of `corrects`, appended to a fresh ledger at `db`."""
    log = SQLiteEventLog(db)
    try:
        log.append(seed_events())
        correction = EventCorrected(corrects=corrects, replacement=replacement, reason="fixed")
        log.append(
            [
                new_event(
                    correction,
                    stream=stream,
                    occurred_on=occurred_on,
                    source=Source(url=SEED_URL, quote="correction"),
                )
            ]
        )
    finally:
        log.close()


class TestShowJson:
    @pytest.mark.parametrize(
        "options",
        [
            [],
            ["--as-of", "2023-12-31"],
            ["--at-position", "6"],
            ["--as-of", "2024-04-30", "--at-position", "9"],
        ],
    )
    @pytest.mark.parametrize("what", ["partnerships", "organizations", "timeline", "capacity"])
    def test_json_agrees_with_the_projection(
        self, seeded: Path, what: str, options: list[str]
    ) -> None:
        """`show WHAT --json` parses and equals the in-process projection at the same view."""
        out = ledger(seeded, "show", what, "--json", *options)
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        as_of = options[options.index("--as-of") + 1] if "--as-of" in options else None
        at = (
            int(options[options.index("--at-position") + 1]) if "--at-position" in options else None
        )
        spec = ViewSpec(
            as_of=datetime.fromisoformat(as_of).date() if as_of else None, at_position=at
        )
        proj = in_process(seeded, spec)
        expected = {
            "partnerships": proj.partnerships,  # type: ignore[attr-defined]
            "organizations": proj.organizations,  # type: ignore[attr-defined]
            "timeline": proj.timeline,  # type: ignore[attr-defined]
            "capacity": lambda: {
                "sites": proj.capacity_sites(),  # type: ignore[attr-defined]
                "summary": {b: proj.capacity_summary(b) for b in ("country", "organization")},  # type: ignore[attr-defined]
            },
        }[what]()
        assert answer["data"] == plain(expected)
        assert answer["view"]["digest"] == proj.digests()[what]  # type: ignore[attr-defined]
        assert answer["view"]["position"] == proj.position  # type: ignore[attr-defined]

    def test_2023_view_holds_the_memorandum_only(self, seeded: Path) -> None:
        """At 2023-12-31 the Lotte/Merck pair holds the 2022 MoU only, signed via MilliporeSigma."""
        answer = json.loads(
            ledger(seeded, "show", "partnerships", "--json", "--as-of", "2023-12-31").stdout
        )
        (pair,) = answer["data"]
        assert pair["orgs"] == ["lotte-biologics", "merck-kgaa"]
        assert [a["type"] for a in pair["agreements"]] == ["memorandum"]
        assert pair["through"]["merck-kgaa"] == ["milliporesigma"]

    def test_a_table_ends_with_the_coordinates_of_its_view(self, seeded: Path) -> None:
        """The last line says the view (as of, known at, position): a pasted table keeps it."""
        out = ledger(
            seeded,
            "show",
            "partnerships",
            "--as-of",
            "2023-12-31",
            "--known-at",
            "2099-01-01T09:00:00+09:00",
        )
        last = out.stdout.decode().strip().splitlines()[-1]
        assert last.startswith(
            "view as of 2023-12-31, known at 2099-01-01T00:00:00.000000Z, at position 10;"
        )
        plain = ledger(seeded, "show", "partnerships").stdout.decode().strip().splitlines()[-1]
        assert plain.startswith("view at position 10; digest ")

    def test_tables_show_money_with_separators(self, seeded: Path) -> None:
        """The people's table writes money with its currency and thousands separators."""
        out = ledger(seeded, "show", "capacity")
        assert out.returncode == 0
        assert b"USD 326,000,000" in out.stdout
        assert b"USD 160,000,000" in out.stdout

    def test_a_site_names_each_organization_role_there(self, seeded: Path) -> None:
        """The seller of a site is not shown as if it held it; a parent's roles are its own."""
        rows = {
            cells[0]: cells[-1]
            for line in ledger(seeded, "show", "organizations").stdout.decode().splitlines()
            if len(cells := [c.strip() for c in line.split("│")[1:-1]]) > 1
        }
        assert rows["bristol-myers-squibb"] == "east-syracuse (seller)"
        assert rows["lotte-biologics"] == "east-syracuse (owner), songdo-bio-campus (initiative)"
        assert rows["merck-kgaa"] == "daejeon (investment, plan)"

    def test_the_capacity_tables_show_plans_and_initiatives(self, seeded: Path) -> None:
        """The 2023 plan and the Bio Venture Initiative are in a table, not only in --json."""
        out = ledger(seeded, "show", "capacity", "--as-of", "2023-12-31").stdout.decode()
        rows = [
            [cell.strip() for cell in line.split("│")[1:-1]]
            for line in out.split("Plans and initiatives by site")[1].splitlines()
            if line.startswith("│")
        ]
        assert rows[:2] == [
            [
                "daejeon",
                "2023-05",
                "commercial production for customers in the region",
                "merck-kgaa",
            ],
            ["songdo-bio-campus", "2023-08", "Bio Venture Initiative", "lotte-biologics"],
        ]

    @pytest.mark.parametrize("columns", [80, 100, 120])
    def test_a_narrow_terminal_folds_cells_and_hides_nothing(
        self, seeded: Path, columns: int
    ) -> None:
        """Every line within the width, every column there, no cell cut with "…" (a review).

        (Figures cut to `USD 160,00…` at 80 columns; a wider table was cropped at the edge.)
        A terminal of that width, from util-linux's `script`.
        """
        if shutil.which("script") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("needs util-linux's script for a terminal")
            pytest.skip("needs util-linux's script for a terminal")
        last = {"capacity": "modalities", "timeline": "source", "organizations": "sites"}
        for what, header in {**last, "partnerships": "site"}.items():
            command = f"stty cols {columns}; {LEDGER} --database {seeded} show {what}"
            out = subprocess.run(
                ["script", "-qec", command, "/dev/null"],
                capture_output=True,
                timeout=60,
                check=False,
                env={k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}},
            )
            assert out.returncode == 0, out.stderr
            plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.stdout.decode())
            lines = [line.rstrip("\r") for line in plain.splitlines()]
            assert max(len(line) for line in lines) <= columns, what
            body = [line for line in lines if not line.startswith(("view ", "next page"))]
            assert not any("…" in line for line in body), what
            assert header[:5] in plain, what  # the last column is there (its header folded)


SHOW_SOURCE = Source(url="urn:test:show")


def registered(orgs: list[str]) -> list[NewEvent]:
    """An `organization_registered` event for each id."""
    return [
        new_event(
            OrganizationRegistered(id=org, name=org.title()),
            stream=f"organization-{org}",
            occurred_on="2030",
            source=SHOW_SOURCE,
        )
        for org in orgs
    ]


def memorandum(agreement: str, *parties: str) -> NewEvent:
    """A memorandum between the parties, after their registrations in valid time."""
    return new_event(
        MemorandumSigned(agreement=agreement, parties=parties),
        stream=f"agreement-{agreement}",
        occurred_on="2030-02",
        source=SHOW_SOURCE,
    )


def ledger_of(db: Path, *batches: list[NewEvent]) -> Path:
    """A ledger at `db` holding these batches, appended in order."""
    log = SQLiteEventLog(db)
    try:
        for batch in batches:
            log.append(batch)
    finally:
        log.close()
    return db


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed plus four partner pairs and five more sites: every list runs to pages."""
    orgs = [f"partner-{n}" for n in range(5)]
    investments = [
        new_event(
            InvestmentCommitted(
                org=orgs[n], site=f"plant-{n}", amount=Money(amount=Decimal(n + 1), currency="EUR")
            ),
            stream=f"site-plant-{n}",
            occurred_on="2030-03",
            source=SHOW_SOURCE,
        )
        for n in range(5)
    ]
    return ledger_of(
        tmp_path_factory.mktemp("busy") / "ledger.db",
        seed_events(),
        [
            *registered(orgs),
            *(memorandum(f"mou-{n}", orgs[n], orgs[n + 1]) for n in range(4)),
            *investments,
        ],
    )


def listed(what: str, answer: dict[str, Any]) -> list[Any]:
    """The list an answer of `show WHAT --json` pages: capacity's sites, else its data."""
    data = answer["data"]
    return list(data["sites"] if what == "capacity" else data)


class TestShowTables:
    def test_a_long_list_in_a_cell_is_cut_with_a_count(self, tmp_path: Path) -> None:
        """An organization with 11 partners: the table names 8 and says 3 more; JSON all 11."""
        others = [f"partner-{n:02}" for n in range(11)]
        db = ledger_of(
            tmp_path / "ledger.db",
            [*registered(["hub", *others]), *(memorandum(f"mou-{o}", "hub", o) for o in others)],
        )
        table = ledger(db, "show", "organizations", "--limit", "1").stdout.decode()
        assert "(+3 more)" in table
        assert "partner-07" in table
        assert "partner-08" not in table
        (hub,) = json.loads(ledger(db, "show", "organizations", "--json", "--limit", "1").stdout)[
            "data"
        ]
        assert hub["partners"] == others


class TestShowPages:
    @pytest.mark.parametrize("limit", [2, 3])
    @pytest.mark.parametrize("what", ["partnerships", "organizations", "timeline", "capacity"])
    def test_pages_to_the_end_give_the_whole_list(self, busy: Path, what: str, limit: int) -> None:
        """Following `next` from page to page gives the whole list, in order, once each."""
        whole = json.loads(ledger(busy, "show", what, "--json").stdout)
        assert len(listed(what, whole)) > limit  # more than one page
        pages: list[dict[str, Any]] = []
        options = ["--limit", str(limit)]
        for _ in range(len(listed(what, whole)) + 1):  # bounded: a page per entry at most
            out = ledger(busy, "show", what, "--json", *options)
            assert out.returncode == 0, out.stderr
            answer = json.loads(out.stdout)
            pages.append(answer)
            assert answer["view"] == whole["view"]
            if answer["next"] is None:
                break
            options = ["--limit", str(limit), "--after", answer["next"]]
        assert [entry for page in pages for entry in listed(what, page)] == listed(what, whole)
        assert all(len(listed(what, page)) <= limit for page in pages)
        assert len(pages) == max(1, -(-len(listed(what, whole)) // limit))
        if what == "capacity":  # the summaries come whole with every page of sites
            assert all(page["data"]["summary"] == whole["data"]["summary"] for page in pages)

    def test_after_alone_is_a_page_of_the_rest(self, seeded: Path) -> None:
        """`--after` without `--limit` starts after the cursor (a default page of 100)."""
        whole = json.loads(ledger(seeded, "show", "timeline", "--json").stdout)["data"]
        first = json.loads(ledger(seeded, "show", "timeline", "--json", "--limit", "3").stdout)
        rest = json.loads(
            ledger(seeded, "show", "timeline", "--json", "--after", first["next"]).stdout
        )
        assert rest["data"] == whole[3:]
        assert rest["next"] is None

    def test_a_table_page_ends_with_the_next_cursor(self, seeded: Path) -> None:
        """For people: the page's rows, then the option that shows the next page."""
        out = ledger(seeded, "show", "organizations", "--limit", "2")
        assert out.returncode == 0, out.stderr
        last = out.stdout.decode().rstrip().splitlines()[-1]
        assert last.startswith("next page: --after ")
        cursor = last.removeprefix("next page: --after ")
        second = json.loads(
            ledger(seeded, "show", "organizations", "--json", "--limit", "2").stdout
        )
        assert cursor == second["next"]
        assert [o["id"] for o in second["data"]][-1] == cursor

    def test_a_table_page_of_capacity_shows_its_sites_only(self, busy: Path) -> None:
        """A person paging sites gets the page, not the summaries of every site again."""
        whole = ledger(busy, "show", "capacity")
        paged = ledger(busy, "show", "capacity", "--limit", "2")
        assert whole.returncode == paged.returncode == 0
        assert b"Capacity by organization" in whole.stdout
        assert b"Capacity by organization" not in paged.stdout
        assert b"Capacity by country" not in paged.stdout
        assert b"Capacity by site" in paged.stdout
        assert b"next page: --after " in paged.stdout

    def test_an_unpaged_answer_has_no_next(self, seeded: Path) -> None:
        """Without `--limit` or `--after` the answer is the whole list, shaped as before."""
        answer = json.loads(ledger(seeded, "show", "timeline", "--json").stdout)
        assert set(answer) == {"view", "data"}


class TestShowBadOptions:
    @pytest.mark.parametrize(
        ("options", "name"),
        [
            (["--as-of", "2024-13-01"], b"--as-of"),
            (["--as-of", "yesterday"], b"--as-of"),
            (["--known-at", "2024-01-01"], b"--known-at"),
            (["--known-at", "2024-01-01T00:00:00"], b"--known-at"),
            (["--known-at", "9999-12-31T23:59:59-00:01"], b"--known-at"),
            (["--known-at", "0001-01-01T00:00:00+00:01"], b"--known-at"),
            (["--known-at", "2024-02-30T00:00:00Z"], b"--known-at"),
            (["--at-position", "-1"], b"--at-position"),
            (["--at-position", "11"], b"--at-position"),
            (["--limit", "0"], b"--limit"),
            (["--limit", "many"], b"--limit"),
            (["--after", "lotte-biologics"], b"--after"),
            (["--after", "a,b,c"], b"--after"),
        ],
    )
    def test_one_line_naming_the_option(
        self, seeded: Path, options: list[str], name: bytes
    ) -> None:
        """A bad time-travel option: one stderr line naming it, exit 2, no traceback."""
        out = ledger(seeded, "show", "partnerships", *options)
        assert out.returncode == 2
        assert len(out.stderr.splitlines()) == 1
        assert name in out.stderr
        assert b"Traceback" not in out.stderr


class TestReplay:
    def test_a_warning_goes_to_stderr_not_into_the_data(self, seeded: Path) -> None:
        """A rejected snapshot's warning is logged on stderr; stdout holds only the report."""
        seeded.with_name(seeded.name + ".snapshot").write_bytes(b"garbage")
        out = ledger(seeded, "replay")
        assert out.returncode == 0, out.stderr
        assert b"snapshot_rejected" in out.stderr
        assert b"snapshot_rejected" not in out.stdout

    def test_replay_matches(self, seeded: Path) -> None:
        """A replay of an untouched log matches the live fold: exit 0, every digest printed."""
        out = ledger(seeded, "replay")
        assert out.returncode == 0, out.stderr
        proj = in_process(seeded, ViewSpec())
        for digest in proj.digests().values():  # type: ignore[attr-defined]
            assert digest.encode() in out.stdout

    def test_two_corrections_recorded_in_either_order_agree(self, tmp_path: Path) -> None:
        """Two corrections of one event, appended in either order: the same answer.

        Two ledgers: the same capacity answer, its view digest included, the later-dated
        correction winning; each ledger's replay agrees with its live state.
        """
        investment = next(e for e in seed_events() if e.type == "investment_committed")

        def correction(jobs: int, occurred_on: str) -> NewEvent:
            data = msgspec.to_builtins(investment.data)
            data["jobs"] = jobs
            fix = EventCorrected(corrects=investment.event_id, replacement=data, reason="r")
            return new_event(
                fix,
                stream="site-daejeon",
                occurred_on=occurred_on,
                source=Source(url=SEED_URL, quote="correction"),
            )

        early, late = correction(310, "2024-03"), correction(320, "2024-04")
        answers = []
        for name, order in (("a", [early, late]), ("b", [late, early])):
            db = tmp_path / f"{name}.db"
            log = SQLiteEventLog(db)
            try:
                log.append(seed_events())
                for event in order:
                    log.append([event])
            finally:
                log.close()
            assert ledger(db, "replay").returncode == 0
            out = ledger(db, "show", "capacity", "--json")
            assert out.returncode == 0, out.stderr
            answers.append(json.loads(out.stdout))
        assert answers[0] == answers[1]
        site = next(s for s in answers[0]["data"]["sites"] if s["site"] == investment.data.site)
        assert [i["jobs"] for i in site["investments"]] == [320]

    def test_replay_after_a_correction(self, tmp_path: Path) -> None:
        """After a correction lands in the past, replay still agrees (the live fold rebuilds)."""
        db = tmp_path / "l.db"
        investment = next(e for e in seed_events() if e.type == "investment_committed")
        data = msgspec.to_builtins(investment.data)
        data["jobs"] = 350
        seeded_and_corrected(
            db, seed_id("investment-daejeon-2024"), data, "site-daejeon", "2024-03"
        )
        out = ledger(db, "replay")
        assert out.returncode == 0, out.stdout + out.stderr
        capacity = json.loads(ledger(db, "show", "capacity", "--json").stdout)
        daejeon = next(s for s in capacity["data"]["sites"] if s["site"] == "daejeon")
        assert daejeon["jobs"] == 350
        before = json.loads(ledger(db, "show", "capacity", "--json", "--at-position", "10").stdout)
        assert next(s for s in before["data"]["sites"] if s["site"] == "daejeon")["jobs"] == 300
        correction = json.loads(ledger(db, "events", "--json", "--after", "10").stdout)
        (investment,) = daejeon["investments"]
        assert investment["corrected_by"] == correction["event_id"]
        for what, marked in (("capacity", "daejeon (corrected)"), ("timeline", "(corrected)")):
            table = ledger(db, "show", what).stdout.decode()
            assert marked in table  # the people's tables say so too
        unmarked = ledger(db, "show", "capacity", "--at-position", "10").stdout.decode()
        assert "(corrected)" not in unmarked

    def test_a_corrected_agreement_is_marked(self, tmp_path: Path) -> None:
        """`show partnerships` marks an agreement whose data a correction replaced."""
        db = tmp_path / "l.db"
        memorandum = next(e for e in seed_events() if e.type == "memorandum_signed")
        data = msgspec.to_builtins(memorandum.data)
        data["scope"] = ["expansion"]
        seeded_and_corrected(db, memorandum.event_id, data, memorandum.stream, "2025")
        table = ledger(db, "show", "partnerships").stdout.decode()
        (row,) = [line for line in table.splitlines() if "expansion" in line]
        assert "memorandum (corrected)" in row
        earlier = ledger(db, "show", "partnerships", "--at-position", "10").stdout.decode()
        assert "memorandum" in earlier
        assert "(corrected)" not in earlier

    def test_a_corrected_registration_is_marked_and_named(self, tmp_path: Path) -> None:
        """`show organizations` marks an organization whose registration was corrected."""
        db = tmp_path / "l.db"
        seeded_and_corrected(
            db,
            seed_id("org-milliporesigma"),
            {"id": "milliporesigma", "name": "MilliporeSigma"},
            "organization-milliporesigma",
            "2024-03",
        )
        table = ledger(db, "show", "organizations").stdout.decode()
        assert "milliporesigma (corrected)" in table
        earlier = ledger(db, "show", "organizations", "--at-position", "10").stdout.decode()
        assert "milliporesigma" in earlier
        assert "(corrected)" not in earlier
        answer = json.loads(ledger(db, "show", "organizations", "--json").stdout)
        (entry,) = [o for o in answer["data"] if o["id"] == "milliporesigma"]
        assert entry["parent"] is None
        assert entry["registration"]["event_id"] == str(seed_id("org-milliporesigma"))
        assert entry["registration"]["corrected_by"] is not None

    def test_replay_flags_a_stale_snapshot(self, tmp_path: Path) -> None:
        """A snapshot whose state disagrees with the log makes replay exit 1."""
        from projections import Live, dump_snapshot  # noqa: PLC0415 - only this test builds one

        db = tmp_path / "l.db"
        log = SQLiteEventLog(db)
        try:
            log.append(seed_events())
            events = list(log.iter_events())
        finally:
            log.close()
        live = Live()
        live.rebuild(events[:-1])  # the snapshot will claim position 10 but miss the last event
        forged = Live(live.state, position=10, frontier=live.frontier)
        Path(f"{db}.snapshot").write_bytes(dump_snapshot(forged, anchor=events[-1].hash))
        out = ledger(db, "replay")
        assert out.returncode == 1
        assert b"NO" in out.stdout

    def test_a_snapshot_of_another_ledger_is_not_trusted(self, tmp_path: Path) -> None:
        """A snapshot left beside a database since replaced: refused, though its position fits.

        (Found by a review: nothing tied a snapshot to its log, only to a position at most
        the head.) Replay says so on stderr and compares live with the log alone.
        """
        from projections import Live, dump_snapshot  # noqa: PLC0415 - only this test builds one

        other, db = tmp_path / "other.db", tmp_path / "l.db"
        for path, events in ((other, seed_events()), (db, seed_events()[:9])):
            log = SQLiteEventLog(path)
            try:
                log.append(events)
                if path == db:
                    log.append(registered(["late-comer"]))
                stored = list(log.iter_events())
            finally:
                log.close()
            if path == other:
                live = Live()
                live.rebuild(stored)
                Path(f"{db}.snapshot").write_bytes(dump_snapshot(live, anchor=stored[-1].hash))
        out = ledger(db, "replay")
        assert out.returncode == 0, out.stderr
        assert b"snapshot: rejected" in out.stdout  # said in the table, not only logged
        assert b"(rejected)" in out.stdout
        assert b"another log" in out.stderr
        report = json.loads(ledger(db, "replay", "--json").stdout)
        assert report["snapshot"].startswith("rejected")
        assert report["ok"] is True
        assert {row["snapshot"] for row in report["projections"].values()} == {None}

    def test_replay_json_gives_whole_digests_and_the_verdict(self, tmp_path: Path) -> None:
        """`--json`: every digest whole (the table cut them at 54 characters), `ok`, exit code."""
        from projections import Live, dump_snapshot  # noqa: PLC0415 - only this test builds one

        db = ledger_of(tmp_path / "l.db", seed_events())
        report = json.loads(ledger(db, "replay", "--json").stdout)
        assert (report["head"], report["snapshot"], report["ok"]) == (10, "none", True)
        expected = build(SQLiteEventLog(db).iter_events()).digests()
        for name, row in report["projections"].items():
            same = expected[name]
            assert row == {"replayed": same, "live": same, "snapshot": None, "match": True}
        log = SQLiteEventLog(db)
        try:
            events = list(log.iter_events())
        finally:
            log.close()
        live = Live()
        live.rebuild(events)
        Path(f"{db}.snapshot").write_bytes(dump_snapshot(live, anchor=events[-1].hash))
        report = json.loads(ledger(db, "replay", "--json").stdout)
        assert report["snapshot"] == "used (at position 10)"
        assert all(row["snapshot"] == expected[name] for name, row in report["projections"].items())
        table = ledger(db, "replay").stdout.decode()
        assert "…" not in table  # folded where too wide, never cut
        assert all(digest[:32] in table for digest in expected.values())
        live.rebuild(events[:-1])
        forged = Live(live.state, position=10, frontier=live.frontier)
        Path(f"{db}.snapshot").write_bytes(dump_snapshot(forged, anchor=events[-1].hash))
        out = ledger(db, "replay", "--json")
        assert out.returncode == 1
        report = json.loads(out.stdout)
        assert report["ok"] is False
        assert not all(row["match"] for row in report["projections"].values())


class TestTablesShowTextAsData:
    """Stored text is shown as given, never read as rich markup (found by a review)."""

    NAME = "[/bold] closing [link=https://evil.example]click[/link] [bold red]"

    @staticmethod
    def table_of(tmp_path: Path, what: str, name: str) -> str:
        """`ledger show what` of a ledger holding one organization of this name."""
        event = new_event(
            OrganizationRegistered(id="named", name=name),
            stream="organization-named",
            occurred_on="2024",
            source=SHOW_SOURCE,
        )
        out = ledger(ledger_of(tmp_path / "l.db", [event]), "show", what)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode()

    @pytest.mark.parametrize("what", ["organizations", "timeline"])
    def test_a_name_with_markup_is_shown_literally(self, tmp_path: Path, what: str) -> None:
        """`[/bold]` stopped the whole table with a markup error; `[link=…]` made a link."""
        text = self.table_of(tmp_path, what, self.NAME)
        assert "[/bold] closing" in text
        assert "[link=https://evil.example]" in text
        assert "\x1b]8;" not in text  # no terminal hyperlink

    @pytest.mark.parametrize("what", ["organizations", "timeline"])
    def test_control_characters_are_shown_as_escapes(self, tmp_path: Path, what: str) -> None:
        """An escape sequence in a name never reaches the terminal (found by a review).

        It made a live link, hid text and moved the cursor up to overwrite the row above.
        """
        name = "Q\x1b]8;;https://evil.example/\x1b\\click \x1b[1A\x1b[2Kerased \u202eabc\x9b"
        text = self.table_of(tmp_path, what, name)
        for raw in ("\x1b", "\u202e", "\x9b"):
            assert raw not in text
        assert r"Q\x1b]8;;https://evil.example/\x1b\click \x1b[1A\x1b[2Kerased" in text
        assert r"\u202eabc\x9b" in text

    def test_a_token_subject_with_markup_is_listed_literally(self, tmp_path: Path) -> None:
        db = ledger_of(tmp_path / "l.db", seed_events()[:1])
        created = ledger(db, "token", "create", "--scope", "append", "--subject", "[/x]")
        assert created.returncode == 0, created.stderr
        out = ledger(db, "token", "list")
        assert out.returncode == 0, out.stderr
        assert "[/x]" in out.stdout.decode()
