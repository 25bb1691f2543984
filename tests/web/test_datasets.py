"""Dataset archives imported into the workbench: ImageNet class folders, VOC and COCO are opened and checked
as an accuracy check opens them, kept by content hash, with their first images served for a preview; an
archive that would write outside its folder (zip-slip, an absolute path, a link) or is too large is refused
with nothing written outside the data folder."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import CHANGE, make_client

PIL = pytest.importorskip("PIL", reason="images need pillow (inferlab[accuracy])")
from PIL import Image  # noqa: E402


def _png(seed: int, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _imagenet(top: str = "shapes/") -> dict[str, bytes]:
    files = {f"{top}{cls}/{i}.png": _png(10 * k + i) for k, cls in enumerate(("circle", "square")) for i in range(3)}
    files[f"{top}labels.txt"] = b"square\ncircle\n"
    return files


def _post(client: TestClient, name: str, data: bytes) -> tuple[int, dict]:
    r = client.post("/api/datasets", files={"file": (name, data)}, headers=CHANGE)
    return r.status_code, r.json()


def _outside(tmp_path: Path) -> set[Path]:
    """Every file under the test's folder but the data folder and the database: what an import may not touch."""
    return {p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "data") and "r.db" not in p.name}


def test_an_imagenet_archive_is_imported_by_content_hash(client: TestClient, tmp_path: Path) -> None:
    status, d = _post(client, "shapes.zip", _zip(_imagenet()))
    assert status == 201, d
    assert d["format"] == "imagenet" and d["samples"] == 6 and d["classes"] == 2
    assert d["class_names"] == ["square", "circle"]  # the order labels.txt gives
    assert d["path"] == f"datasets/{d['hash']}/data/shapes" and d["labels"] == f"{d['path']}/labels.txt"
    assert d["content_hash"].startswith(d["hash"]) and len(d["previews"]) == 6
    again = _post(client, "again.zip", _zip(_imagenet()))[1]
    assert again["hash"] == d["hash"]  # same content, same dataset
    img = client.get(f"/api/datasets/{d['hash']}/previews/0")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(img.content)).size == (16, 16)
    assert client.get(f"/api/datasets/{d['hash']}/previews/99").status_code == 404
    page = client.get(f"/datasets/{d['hash']}")
    assert page.status_code == 200 and "previews/0" in page.text
    assert [x["hash"] for x in client.get("/api/datasets").json()] == [d["hash"]]


def test_voc_and_coco_archives_as_tar(client: TestClient) -> None:
    voc = {"voc/JPEGImages/a.png": _png(1, 32), "voc/labels.txt": b"cat\ndog\n",
           "voc/Annotations/a.xml": b"<annotation><filename>a.png</filename><size><width>32</width><height>32"
                                    b"</height></size><object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
                                    b"<xmax>20</xmax><ymax>30</ymax></bndbox></object></annotation>"}
    coco_ann = {"images": [{"id": 1, "file_name": "b.png", "width": 32, "height": 32}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 10], "area": 100,
                                 "iscrowd": 0}], "categories": [{"id": 3, "name": "bird"}]}
    coco = {"coco/b.png": _png(2, 32), "coco/annotations.json": json.dumps(coco_ann).encode()}
    for name, files, fmt in (("voc.tar", voc, "voc"), ("coco.tar.gz", coco, "coco")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz" if name.endswith("gz") else "w") as t:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        status, d = _post(client, name, buf.getvalue())
        assert status == 201, d
        assert d["format"] == fmt and d["samples"] == 1


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.addfile(member, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("shapes/link.png")
        info.external_attr = (0o120777 << 16)  # a symbolic link, as zip records one
        z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    data = b"x" if kind == tarfile.REGTYPE else b""
    info.size = len(data)
    return _tar_with(info, data)


@pytest.mark.parametrize(("name", "data", "words"), [
    ("slip.zip", _zip({"../../outside.txt": b"x", "a/b.png": b"y"}), "leads outside the archive"),
    ("abs.zip", _zip({"/tmp/inferlab-abs.txt": b"x"}), "absolute path"),
    ("link.zip", _symlink_zip(), "link or special file"),
    ("slip.tar", _tar_member("../../outside.txt"), "leads outside the archive"),
    ("abs.tar", _tar_member("/tmp/inferlab-abs.txt"), "absolute path"),
    ("link.tar", _tar_member("data/link", tarfile.SYMTYPE, "/etc/passwd"), "link or special file"),
    ("hard.tar", _tar_member("data/hard", tarfile.LNKTYPE, "/etc/passwd"), "link or special file"),
    ("dev.tar", _tar_member("data/null", tarfile.CHRTYPE), "link or special file"),
    ("notes.txt", b"hello", "import a dataset as a .zip"),
    ("broken.zip", b"PK\x03\x04 not really", "not a readable zip"),
    ("empty.zip", _zip({"readme.md": b"no images"}), "no class subfolders"),
])
def test_unsafe_or_wrong_archives_are_refused(client: TestClient, tmp_path: Path, name: str, data: bytes,
                                              words: str) -> None:
    before = _outside(tmp_path)
    status, body = _post(client, name, data)
    assert 400 <= status < 500 and words in body["detail"], (status, body)
    assert "\n" not in body["detail"] and str(tmp_path) not in body["detail"]
    assert _outside(tmp_path) == before  # nothing written outside the data folder
    data_dir = tmp_path / "data"
    assert not (data_dir / "datasets").exists()
    assert not (data_dir / "incoming").exists() or list((data_dir / "incoming").iterdir()) == []
    assert not Path("/tmp/inferlab-abs.txt").exists()


def test_archives_over_the_limits_are_refused(tmp_path: Path) -> None:
    with make_client(tmp_path, max_upload_mb=0.01) as c:
        status, body = _post(c, "big.zip", b"x" * 20_000)
        assert status == 413 and "limit" in body["detail"]
    bomb = _zip({"shapes/a/big.png": b"\0" * 3_000_000})  # compresses to a few KB
    with make_client(tmp_path, max_archive_mb=1) as c:
        status, body = _post(c, "bomb.zip", bomb)
        assert status == 413 and "unpacks to more than" in body["detail"]
