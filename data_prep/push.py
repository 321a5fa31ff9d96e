"""Upload a built dataset to the Hugging Face Hub as a dataset repository.

    python -m data_prep.push --data-dir outputs/data/crohme --repo-id USER/NAME [--private] [--dry-run]

Sends the dataset card (``README.md``, whose ``configs`` make every split loadable by name), the
shards and the build report (:data:`data_prep.build.card.UPLOAD_PATTERNS`); the build's resume state
(``manifest.json``, ``.build/``), caches and the ShareGPT export stay local. Refuses a folder whose
build did not finish (no card, or a split not finished). ``--dry-run`` lists what would be sent.
Authentication is huggingface_hub's own (``hf auth login`` or ``HF_TOKEN``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from data_prep.build.card import CARD_MARKER, IGNORE_PATTERNS, UPLOAD_PATTERNS, upload_files

logger = logging.getLogger("data_prep.push")


def check_ready(data_dir: Path) -> list[str]:
    """The files to upload; a ``ValueError`` saying why when the folder is not a finished build."""
    card = data_dir / "README.md"
    if not card.is_file() or CARD_MARKER not in card.read_text(encoding="utf-8", errors="replace"):
        raise ValueError(
            f"{data_dir} has no dataset card written by the build: build it first with "
            "python -m data_prep.build --config RECIPE"
        )
    manifest = data_dir / "manifest.json"
    if manifest.is_file():
        splits = json.loads(manifest.read_text(encoding="utf-8")).get("splits", {})
        unfinished = sorted(name for name, state in splits.items() if not state.get("complete"))
        if unfinished:
            raise ValueError(
                f"{data_dir}: split(s) {', '.join(unfinished)} did not finish building; rerun the build first"
            )
    return upload_files(data_dir)


def push(data_dir: str | Path, repo_id: str, *, private: bool = False, api=None) -> str:
    """Create (or reuse) the dataset repo ``repo_id`` and upload the build; returns the commit URL."""
    data_dir = Path(data_dir)
    files = check_ready(data_dir)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    logger.info("uploading %d files from %s to %s", len(files), data_dir, repo_id)
    commit = api.upload_folder(
        folder_path=str(data_dir),
        repo_id=repo_id,
        repo_type="dataset",
        allow_patterns=list(UPLOAD_PATTERNS),
        ignore_patterns=list(IGNORE_PATTERNS),
        commit_message="Upload dataset built with hmer-recipes (python -m data_prep.build)",
    )
    return str(commit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.push", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="a folder written by python -m data_prep.build")
    parser.add_argument("--repo-id", required=True, help="the Hub dataset repository, e.g. USER/NAME")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.dry_run:
            files = check_ready(Path(args.data_dir))
            print("\n".join(files))
            print(f"{len(files)} files would be uploaded to {args.repo_id}", file=sys.stderr)
            return 0
        print(push(args.data_dir, args.repo_id, private=args.private))
    except ValueError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
