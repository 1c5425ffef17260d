"""The agency registry is data: every target of agencies.md, validated with errors that name the bad row."""

from pathlib import Path

import pytest
import yaml

from routing.registry import AgencyRecord, dump_registry, load_registry, regency_for_location

REGENCY_LOCATIONS = {
    "KAB-LOBAR": "52.01", "KAB-LOTENG": "52.02", "KAB-LOTIM": "52.03", "KAB-SUMBAWA": "52.04",
    "KAB-DOMPU": "52.05", "KAB-BIMA": "52.06", "KAB-KSB": "52.07", "KAB-KLU": "52.08",
    "KOTA-MATARAM": "52.71", "KOTA-BIMA": "52.72",
}
PARTNERS = {"PLN", "PDAM-GIRIMENANG", "PDAM", "BPJSKES", "BPJSTK", "POLDA", "BPN", "KEMENAG", "BPJN", "BWS"}


def test_bundled_registry_has_every_target_with_its_kind():
    records = load_registry()
    kinds = {record.code: record.kind for record in records}
    assert len(records) == 63
    assert {code for code, kind in kinds.items() if kind == "partner"} == PARTNERS
    assert {record.code: record.location for record in records if record.kind == "regency"} == REGENCY_LOCATIONS
    assert sum(kind == "opd" for kind in kinds.values()) == 43
    assert {"PUPRPKP", "DIKPORA", "RSUDP", "BAPENDA", "BIROUMUM"} <= set(kinds)


def test_old_names_are_kept_as_aliases_citizens_still_use():
    by_code = {record.code: record for record in load_registry()}
    assert "Dinas PUPR" in by_code["PUPRPKP"].old_names
    assert "Dikbud" in by_code["DIKPORA"].old_names
    assert by_code["PLN"].emails == []


def test_regency_is_found_from_its_location_code():
    assert regency_for_location("52.03") == "KAB-LOTIM"
    assert regency_for_location("52.72") == "KOTA-BIMA"
    assert regency_for_location("53.01") is None


def test_dump_and_load_round_trip(tmp_path: Path):
    records = load_registry()
    path = tmp_path / "agencies.yaml"
    dump_registry(records, path)
    assert load_registry(path) == records


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "agencies.yaml"
    path.write_text(yaml.safe_dump(rows), encoding="utf-8")
    return path


def test_duplicate_code_is_rejected_naming_the_row(tmp_path: Path):
    row = {"code": "PLN", "name": "PLN", "kind": "partner"}
    with pytest.raises(ValueError, match=r"row 2 \('PLN'\): duplicate code"):
        load_registry(_write(tmp_path, [row, row]))


def test_regency_without_location_is_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match=r"row 1 \('KAB-X'\).*location code"):
        load_registry(_write(tmp_path, [{"code": "KAB-X", "name": "Kab X", "kind": "regency"}]))


def test_unknown_kind_and_parent_are_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="kind must be one of"):
        load_registry(_write(tmp_path, [{"code": "X", "name": "X", "kind": "dinas"}]))
    with pytest.raises(ValueError, match="parent 'NOPE' is not a known code"):
        load_registry(_write(tmp_path, [{"code": "X", "name": "X", "kind": "opd", "parent": "NOPE"}]))


def test_invalid_record_is_not_written(tmp_path: Path):
    bad = AgencyRecord(code="lower", name="x", kind="opd")
    with pytest.raises(ValueError, match="code must be upper-case"):
        dump_registry([bad], tmp_path / "out.yaml")
    assert not (tmp_path / "out.yaml").exists()
