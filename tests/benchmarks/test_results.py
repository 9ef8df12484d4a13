"""``evaluation.results``: grids, rows, partial CSV writes and reports, independent of any benchmark."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evaluation.results.grid import SpecError, expand_grid
from evaluation.results.report import Column, ReportSpec, markdown_table, write_results_report
from evaluation.results.rows import earlier_rows, make_row, partial_writer, read_csv, write_csv

COLUMNS = ("bench", "method", "size", "ms", "status", "note", "timestamp")
ENV = {"device_name": "cpu: test", "commit": "abc1234", "threads": 1, "version_torch": "2.0"}


def _rows() -> list[dict]:
    return [make_row(COLUMNS, ENV, bench="toy", method=m, size=s, ms=1.5 * s, status="ok")
            for m, s in (("a", 1), ("a", 2), ("b", 1))] + [
        make_row(COLUMNS, ENV, bench="toy", method="b", size=2, status="skipped", note="estimated 3 s > budget 1 s")]


TOY_REPORT = ReportSpec(name="toy", columns=COLUMNS, title="Toy ({device})",
                        table=(Column("method", "method"), Column("size", "size", ",d"), Column("ms", "ms", ".1f"),
                               Column("status", "status")))


class TestGrid:
    def test_cells_in_product_order_first_axis_slowest(self):
        assert expand_grid({"a": (1, 2), "b": ("x", "y")}) == [
            {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]

    def test_an_empty_axis_is_a_clear_error(self):
        with pytest.raises(SpecError, match="b: expected at least one value"):
            expand_grid({"a": (1,), "b": ()})


class TestRows:
    def test_row_has_every_column_a_note_a_timestamp_and_the_environment(self):
        row = make_row(COLUMNS, ENV, bench="toy", status="ok")
        assert set(COLUMNS) | set(ENV) <= set(row)
        assert math.isnan(row["ms"]) and row["note"] == "" and row["timestamp"].endswith("Z")

    def test_partial_writes_keep_earlier_rows_and_rewrite_the_csv_per_group(self, tmp_path):
        path = tmp_path / "toy.csv"
        write_csv(_rows()[:1], path, COLUMNS)
        earlier = earlier_rows(path, append=True)
        assert len(earlier) == 1 and earlier_rows(path, append=False) == []
        write = partial_writer(path, COLUMNS, earlier)
        write(_rows()[1:2])
        assert len(read_csv(path)) == 2
        write(_rows()[1:])
        frame = read_csv(path)
        assert len(frame) == 4 and list(frame.columns[:len(COLUMNS)]) == list(COLUMNS)
        assert frame["note"].tolist()[:3] == ["", "", ""], "notes read back as strings, never NaN"

    def test_missing_csv_is_a_clear_error(self, tmp_path):
        with pytest.raises(SpecError, match="does not exist"):
            read_csv(tmp_path / "none.csv")


class TestReport:
    def test_markdown_without_a_plot_from_the_csv_alone(self, tmp_path):
        csv_path = write_csv(_rows(), tmp_path / "toy_cpu.csv", COLUMNS)
        md, png = write_results_report(csv_path, {"toy": TOY_REPORT}, tmp_path / "out")
        assert png is None and not (tmp_path / "out" / "toy_cpu.png").exists()
        lines = md.read_text().splitlines()
        assert lines[0] == "### Toy (cpu: test)" and lines[2].startswith("device: cpu: test · commit abc1234")
        assert "| b | 2 | – | skipped |" in lines

    def test_heading_replaces_the_title_and_environment_line(self, tmp_path):
        spec = ReportSpec(name="toy", columns=COLUMNS, table=TOY_REPORT.table, title="unused",
                          heading=lambda frame: [f"{len(frame)} toy rows on {frame['device_name'].iloc[0]}.", ""])
        md, _ = write_results_report(write_csv(_rows(), tmp_path / "toy.csv", COLUMNS), {"toy": spec})
        assert md.read_text().startswith("4 toy rows on cpu: test.\n\n| method | size |")

    def test_plot_is_drawn_when_the_spec_has_one(self, tmp_path):
        spec = ReportSpec(name="toy", columns=COLUMNS, table=TOY_REPORT.table, title="Toy ({device})",
                          plot={"x": "size", "y": "ms", "hue": "method"})
        _, png = write_results_report(write_csv(_rows(), tmp_path / "toy.csv", COLUMNS), {"toy": spec})
        assert png == tmp_path / "toy.png" and png.stat().st_size > 0

    def test_unknown_grid_or_no_key_column_is_a_clear_error(self, tmp_path):
        csv_path = write_csv(_rows(), tmp_path / "toy.csv", COLUMNS)
        with pytest.raises(SpecError, match="unknown results 'toy'.*known: other"):
            write_results_report(csv_path, {"other": TOY_REPORT})
        pd.DataFrame({"x": [1]}).to_csv(tmp_path / "plain.csv", index=False)
        with pytest.raises(SpecError, match="no 'bench' column"):
            write_results_report(tmp_path / "plain.csv", {"toy": TOY_REPORT})

    def test_integer_format_accepts_integers_read_back_as_floats(self):
        text = markdown_table([{"n": 1006.0}, {"n": float("nan")}, {"n": 7}], [Column("n", "pixels", ",d")])
        assert text.splitlines()[2:] == ["| 1,006 |", "| – |", "| 7 |"]
