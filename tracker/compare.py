"""Comparisons read back from MLflow: the latest run of each (collection, method, k, setting)."""

from imgvault.store.errors import NotFound

from .tracking import open_client

COLUMNS = ("mse_mean", "psnr_mean", "ssim_mean", "bpp_mean", "exact_fraction", "failed_images")
SECURITY_COLUMNS = ("entropy_mean", "corr_h_mean", "corr_v_mean", "corr_d_mean", "chi2_mean", "npcr_mean",
                    "uaci_mean", "visual_ssim_mean", "key_ssim_mean", "attack_ssim", "attack_decoder_ssim",
                    "attack_psnr_vs_decoder", "attack_baseline_ssim")  # fmt: skip


def compare(home, collections: list[str] | None = None, experiment: str | None = None) -> list[dict]:
    """One row per (collection, method, k, fit, size, color): the mean metrics of its latest child run.

    Looks in ``experiment`` if given, else in every ``imgvault/...`` experiment, and keeps only the
    ``collections`` asked for, if any.
    """
    client = open_client(home)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise NotFound(f'MLflow experiment "{experiment}" not found')
        experiments = [found]
    else:
        experiments = client.search_experiments(filter_string="name LIKE 'imgvault/%'", max_results=1000)
    query = "tags.`imgvault.kind` = 'child' and attributes.status = 'FINISHED'"
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
               "n_images": int(params.get("n_images", 0)), "run_id": run.info.run_id}  # fmt: skip
        row.update({name: run.data.metrics.get(name) for name in COLUMNS + SECURITY_COLUMNS})
        row["attack_model"] = run.data.tags.get("imgvault.attack_model")
        rows.append(row)
    missing = set(collections or ()) - {row["collection"] for row in rows}
    if missing:
        raise NotFound(f"no finished runs for collection(s): {', '.join(sorted(missing))} (run: imgvault run -c NAME)")
    return sorted(rows, key=lambda r: (r["collection"], r["fit"], r["size"], r["color"], r["method"], r["k"] or 0))
