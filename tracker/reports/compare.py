"""Comparisons read back from MLflow: the latest run of each (collection, method, k, setting).

A configuration that failed on every image (``k`` too large for the images, say) is a FAILED child run
tagged with its first error; with ``with_failed`` it is a row too, so that it cannot silently disappear.
"""

from imgvault.basics.errors import NotFound
from imgvault.tracker.reports.threat import attack_cells
from imgvault.tracker.tracking import open_client

#: the keys of a row (and of ``imgvault compare --json``), besides collection, method, k, fit, size, color,
#: n_images, run_id, status, used_images, failed_images, error, attack_model, criteria, not_applicable and
#: attacks (the threat matrix's cells: see :func:`imgvault.tracker.reports.threat.attack_cells`); all are means over
#: the images the run used
COLUMNS = ("mse", "psnr", "ssim", "bpp", "exact_fraction")
SECURITY_COLUMNS = ("entropy", "chi2", "corr_h", "corr_v", "corr_d", "npcr", "uaci", "visual_ssim", "key_ssim",
                    "key_sensitivity", "key_sensitivity_bits", "key_space_bits", "entropy_pass_rate", "chi2_pass_rate",
                    "npcr_pass_rate", "uaci_pass_rate")  # fmt: skip
ATTACK_COLUMNS = ("attack_ssim", "attack_baseline_ssim", "attack_key_holder_ssim", "attack_psnr_vs_key_holder",
                  "attack_gain", "attack_gain_ci_low", "attack_gain_ci_high", "attack_gap", "attack_gap_ci_low",
                  "attack_gap_ci_high", "attack_splits", "attack_test_images")  # fmt: skip
CRITERION = "criterion/"
NOT_APPLICABLE = "imgvault.not_applicable."
UTILITY = "utility/"
FIRST_FAILURE = "imgvault.first_failure"


def label(row: dict) -> str:
    """``pca k=8``, ``aes``: a row's method and k as the runs name them."""
    return row["method"] if row["k"] is None else f"{row['method']} k={row['k']}"


def failure_line(row: dict) -> str:
    """``failed on 6 of 6 images: k=200 is too large ...``: how many images a row's run failed on, and why
    (the first error)."""
    return f"failed on {row['failed_images']} of {row['n_images']} images: {row['error']}"


def compare(home, collections: list[str] | None = None, experiment: str | None = None, *,
            with_failed: bool = False) -> list[dict]:  # fmt: skip
    """One row per (collection, method, k, fit, size, color): the mean metrics of its latest child run, the
    criteria at its payload's size (``criteria``) and the measures that do not apply, with why
    (``not_applicable``). ``used_images`` and ``failed_images`` count the images the run encoded and those
    it failed on; ``error`` is its first failure, if any.

    ``status`` is ``finished``; with ``with_failed``, a configuration whose latest run failed on every image
    is a row of ``status`` ``failed``, with its ``error`` and no metrics. Looks in ``experiment`` if given,
    else in every ``imgvault/...`` experiment, and keeps only the ``collections`` asked for, if any.
    """
    client = open_client(home)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise NotFound(f'MLflow experiment "{experiment}" not found')
        experiments = [found]
    else:
        experiments = client.search_experiments(filter_string="name LIKE 'imgvault/%'", max_results=1000)
    query = "tags.`imgvault.kind` = 'child'"
    if not with_failed:
        query += " and attributes.status = 'FINISHED'"
    runs, token = [], None
    while experiments:
        page = client.search_runs(
            [e.experiment_id for e in experiments],
            filter_string=query,
            order_by=["attributes.start_time DESC"],
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    rows, seen = [], set()
    for run in runs:
        params, tags = run.data.params, run.data.tags
        # A run that failed for want of a fitting k is FAILED with its error; one that crashed or was
        # interrupted says nothing about the configuration.
        failed = run.info.status == "FAILED" and FIRST_FAILURE in tags
        if run.info.status != "FINISHED" and not failed:
            continue
        collection = tags.get("imgvault.collection")
        if collections and collection not in collections:
            continue
        key = (collection, params.get("method"), params.get("k"), params.get("fit"), params.get("size"),
               params.get("color"))  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        row = {"collection": collection, "method": params.get("method"),
               "k": None if params.get("k") in (None, "none") else int(params["k"]), "fit": params.get("fit"),
               "size": int(params.get("size", 0)), "color": params.get("color"),
               "n_images": int(params.get("n_images", 0)), "run_id": run.info.run_id,
               "status": "failed" if failed else "finished"}  # fmt: skip
        metrics = run.data.metrics
        row["failed_images"] = int(metrics.get("failed_images", 0))
        row["used_images"] = row["n_images"] - row["failed_images"]
        row["error"] = tags.get(FIRST_FAILURE)
        row.update({name: metrics.get(name) for name in COLUMNS + SECURITY_COLUMNS + ATTACK_COLUMNS})
        row["attack_model"] = tags.get("imgvault.attack_model")
        # What a random payload of this run's size scores (n, levels, entropy_expected, npcr_critical, ...).
        row["criteria"] = {k[len(CRITERION) :]: v for k, v in metrics.items() if k.startswith(CRITERION)}
        row["not_applicable"] = {k[len(NOT_APPLICABLE) :]: v for k, v in tags.items() if k.startswith(NOT_APPLICABLE)}
        # The threat matrix's cells: each attack's gain and interval, or why it does not apply.
        row["attacks"] = attack_cells(metrics, row["not_applicable"])
        # The key holder's side: accuracy ratios on encrypted and decoded images over plain ones.
        row["utility"] = {k[len(UTILITY) :]: v for k, v in metrics.items() if k.startswith(UTILITY)}
        rows.append(row)
    missing = set(collections or ()) - {row["collection"] for row in rows}
    if missing:
        raise NotFound(f"no finished runs for collection(s): {', '.join(sorted(missing))} (run: imgvault run -c NAME)")
    return sorted(rows, key=lambda r: (r["collection"], r["fit"], r["size"], r["color"], r["method"], r["k"] or 0))
