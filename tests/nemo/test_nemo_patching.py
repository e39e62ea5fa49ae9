"""The model-agnostic patch engine (deploy.install.patching) on small synthetic files."""
from __future__ import annotations

import pytest

from deploy.install import main as install_main
from deploy.install.patching import (
    Patch,
    PatchError,
    apply_patches,
    apply_to_text,
    find_blocks,
    load_table,
    remove_blocks,
)

HOST = """\
MODULE demo
CONTAINS
   SUBROUTINE init
      CALL mpp_start( ilocal_comm )
      CALL other
   END SUBROUTINE init
END MODULE demo
"""


def _patch(**kw) -> Patch:
    base = dict(id="comm", target="demo.F90", anchor="CALL mpp_start( ilocal_comm )", position="before",
                text="#if defined key_obridge\n      CALL obn_init( ilocal_comm )\n#endif")
    return Patch(**{**base, **kw})


def test_insert_before_and_after_with_markers():
    new, res = apply_to_text(HOST, [_patch(), _patch(id="after", position="after", text="      CALL x")])
    lines = new.split("\n")
    k = lines.index("      CALL mpp_start( ilocal_comm )")
    assert lines[k - 5:k] == ["! >>> oceanbridge comm", "#if defined key_obridge", "      CALL obn_init( ilocal_comm )",
                              "#endif", "! <<< oceanbridge comm"]
    assert lines[k + 1:k + 4] == ["! >>> oceanbridge after", "      CALL x", "! <<< oceanbridge after"]
    assert [r.status for r in res] == ["applied", "applied"]
    assert remove_blocks(new) == HOST                     # removal gives back the host file exactly


def test_reapply_is_idempotent_and_upgrade_replaces():
    once, _ = apply_to_text(HOST, [_patch()])
    twice, res = apply_to_text(once, [_patch()])
    assert twice == once and res[0].status == "skipped"
    upgraded, res = apply_to_text(once, [_patch(text="      CALL v2")])
    assert res[0].status == "upgraded"
    assert "CALL v2" in upgraded and "obn_init" not in upgraded
    assert remove_blocks(upgraded) == HOST


def test_regex_anchor_and_comment_styles():
    p = _patch(anchor=None, regex=r"^\s*CALL\s+other\b", position="after", comment="C", text="      call y",
               description="fixed form")
    new, _ = apply_to_text(HOST, [p])
    assert "C >>> oceanbridge comm: fixed form\n      call y\nC <<< oceanbridge comm\n" in new
    new, _ = apply_to_text(HOST, [_patch(comment="/*")])
    assert "/* >>> oceanbridge comm */" in new and "/* <<< oceanbridge comm */" in new
    assert remove_blocks(new) == HOST


@pytest.mark.parametrize("anchor, count", [("CALL missing", 0), ("END", 0)])
def test_anchor_not_found_refuses_naming_file_anchor_count(anchor, count):
    with pytest.raises(PatchError, match=rf"demo.F90: patch 'comm': anchor '{anchor}' .* found {count}"):
        apply_to_text(HOST, [_patch(anchor=anchor)], "demo.F90")


def test_anchor_matching_twice_refuses_with_lines():
    with pytest.raises(PatchError, match=r"found 2 \(lines 3, 6\)"):
        apply_to_text(HOST, [_patch(anchor=None, regex="SUBROUTINE init")], "demo.F90")


def test_anchor_inside_own_block_is_ignored():
    # the inserted text repeats the anchor line: a second patch on the same anchor still finds exactly one
    p1 = _patch(text="      CALL mpp_start( ilocal_comm )")
    new, _ = apply_to_text(HOST, [p1, _patch(id="two", position="after", text="! two")])
    assert new.count("! two") == 1


def test_bad_patch_definitions_raise():
    with pytest.raises(PatchError, match="position 'middle'"):
        _patch(position="middle")
    with pytest.raises(PatchError, match="exactly one of 'anchor'"):
        _patch(regex="x")
    with pytest.raises(PatchError, match="basename"):
        _patch(target="src/OCE/demo.F90")
    with pytest.raises(PatchError, match="comment ';'"):
        _patch(comment=";")


def test_unbalanced_markers_refuse():
    with pytest.raises(PatchError, match="never closed"):
        find_blocks(["! >>> oceanbridge a", "x"])


def test_table_from_toml_and_folder_apply(tmp_path, capsys):
    table = tmp_path / "patches.toml"
    table.write_text('''
[[patch]]
id = "comm"
target = "demo.F90"
anchor = "CALL mpp_start( ilocal_comm )"
position = "before"
description = "communicator"
text = """
      CALL obn_init( ilocal_comm )
"""
''')
    src = tmp_path / "src"
    src.mkdir()
    (src / "demo.F90").write_text(HOST)
    patches = load_table(table)
    res = apply_patches(src, patches, dry_run=True)
    assert (src / "demo.F90").read_text() == HOST and res[0].status == "applied"
    diff = capsys.readouterr().out
    assert "+! >>> oceanbridge comm: communicator" in diff and diff.startswith("--- a/demo.F90")
    apply_patches(src, patches)
    assert "CALL obn_init" in (src / "demo.F90").read_text()
    assert apply_patches(src, patches)[0].status == "skipped"
    assert not list(src.glob(".*tmp"))                 # atomic write left no temporary file


def test_refusal_leaves_every_file_untouched(tmp_path):
    (tmp_path / "a.F90").write_text(HOST)
    (tmp_path / "b.F90").write_text(HOST)
    good = _patch(target="a.F90")
    bad = _patch(id="bad", target="b.F90", anchor="CALL nowhere")
    with pytest.raises(PatchError, match="b.F90: patch 'bad'"):
        apply_patches(tmp_path, [good, bad])
    assert (tmp_path / "a.F90").read_text() == HOST
    with pytest.raises(PatchError, match="file to patch not found"):
        apply_patches(tmp_path, [_patch(target="c.F90")])


def test_table_unknown_key_and_duplicate_id(tmp_path):
    t = tmp_path / "t.toml"
    t.write_text('[[patch]]\nid="a"\ntarget="x.F90"\nanchor="y"\nposition="after"\ntext=""\nanchr="z"\n')
    with pytest.raises(PatchError, match=r"unknown keys \['anchr'\]"):
        load_table(t)
    t.write_text('[[patch]]\nid="a"\ntarget="x.F90"\nanchor="y"\nposition="after"\ntext=""\n' * 2)
    with pytest.raises(PatchError, match=r"duplicate ids \['a'\]"):
        load_table(t)


def test_install_dispatch_unknown_target(capsys):
    assert install_main(["fortran77"]) == 2
    assert "unknown target 'fortran77'; known targets: nemo, croco" in capsys.readouterr().err
