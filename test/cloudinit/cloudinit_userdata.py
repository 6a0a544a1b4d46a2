"""Consumes the user data of config-drive trees with one cloud-init release's own code.

Where cloudinit_generations.py reads a drive, this runs what the guest's init stage does
with its user data: DataSourceConfigDrive.get_data on the tree (which also writes the
instance data jinja templates render from), the release's UserDataProcessor, and its
default part handlers walked over the result (stages.Init._default_handlers and
_do_handlers, unchanged). Only what would act on the host is recorded instead of done:
boothooks are read, not run; on_first_boot's file injection is skipped. Every path
cloud-init writes to lies under SCRATCH.

argv: SCRATCH_DIR RELEASE_ROOT. stdin: a JSON list of {"dir": PATH}. stdout: a JSON list,
one answer per drive, in order.
"""

import copy
import json
import os
import shutil
import sys

# The sibling module is imported from the source tree, which must not gain a __pycache__.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cloudinit_generations as gen  # noqa: E402  (the release's cloudinit, via PYTHONPATH)
from cloudinit import ssh_util, stages, subp, util  # noqa: E402
from cloudinit.distros import fetch as fetch_distro  # noqa: E402
from cloudinit.settings import PER_INSTANCE  # noqa: E402
from cloudinit.sources import DataSourceConfigDrive, normalize_pubkey_data  # noqa: E402


def tree_files(root: str) -> dict:
    out = {}
    if not os.path.isdir(root):
        return out
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read().decode("utf-8", "replace")
    return out


def as_text(payload) -> str:
    return payload if isinstance(payload, str) else payload.decode("utf-8", "replace")


def key_lines(cloud_config: dict, public_keys: list) -> list:
    """What the release's authorized_keys parser makes of every key it would install."""
    lines = list(public_keys)
    for user in cloud_config.get("users") or []:
        if isinstance(user, dict):
            keys = user.get("ssh_authorized_keys") or []
            lines.extend([keys] if isinstance(keys, str) else keys)
    parser = ssh_util.AuthKeyLineParser()
    out = []
    for line in lines:
        # options="" is what cc_ssh passes for root when disable_root is false, None what
        # create_user passes: both keep the line's own options.
        entry = parser.parse(str(line), options=None)
        out.append({"line": line, "keytype": entry.keytype, "options": entry.options, "comment": entry.comment, "written": str(entry)})
    return out


def consume(request: dict, scratch: str, sys_cfg: dict, collect) -> dict:
    work = os.path.join(scratch, "consume")
    shutil.rmtree(work, ignore_errors=True)
    cloud_dir, run_dir = os.path.join(work, "cloud"), os.path.join(work, "run")
    cfg = copy.deepcopy(sys_cfg)
    cfg.setdefault("system_info", {})["paths"] = {"cloud_dir": cloud_dir, "run_dir": run_dir}
    cfg["datasource_list"] = ["ConfigDrive"]
    result = {}
    start = collect.begin()

    init = stages.Init(ds_deps=[])
    # The release's own config with every path under SCRATCH, whatever the host has in /etc/cloud.
    init._read_cfg = lambda *a, **k: copy.deepcopy(cfg)
    distro_name = cfg["system_info"].get("distro", "debian")
    paths = init.paths
    distro = fetch_distro(distro_name)(distro_name, cfg["system_info"], paths)
    ds = DataSourceConfigDrive.DataSourceConfigDrive(cfg, distro, paths)
    ds.seed_dir = request["dir"]
    for d in (cloud_dir, run_dir):
        os.makedirs(d)
    saved_first_boot = DataSourceConfigDrive.on_first_boot
    DataSourceConfigDrive.on_first_boot = lambda *a, **k: None
    try:
        if not ds.get_data():
            return {"error": "DataSourceConfigDrive found no drive", "log_warnings": collect.since(start)}
    finally:
        DataSourceConfigDrive.on_first_boot = saved_first_boot
    init.datasource = ds
    init._paths = None  # recomputed with the datasource, as Init.fetch leaves it
    paths = init.paths
    # As the init stage does before it consumes user data: the instance's directories
    # (handlers/ among them, where part handlers are imported from) and links.
    init.instancify()

    result["public_keys"] = normalize_pubkey_data(ds.metadata.get("public_keys", {}))
    boothooks = []

    def record(args, *rest, **kwargs):
        # 20.4 and 22.4 pass the whole environment (env=), later releases only the change (update_env=).
        path = args[0] if isinstance(args, (list, tuple)) else args
        with open(path, "rb") as f:
            boothooks.append({"file": os.path.basename(str(path)), "content": f.read().decode("utf-8", "replace"), "instance_id": ({**(kwargs.get("env") or {}), **(kwargs.get("update_env") or {})}).get("INSTANCE_ID")})
        result_type = getattr(subp, "SubpResult", None)
        return result_type("", "") if result_type else ("", "")

    saved_subp = subp.subp
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    subp.subp = record
    try:
        try:
            message = ds.get_userdata(True)
        except Exception as e:  # what the guest logs when user data cannot be processed
            result["ud_error"] = f"{type(e).__name__}: {e}"
            result["log_warnings"] = collect.since(start)
            return result
        result["parts"] = [
            {
                "type": p.get_content_type(),
                "filename": p.get_filename(),
                "merge_type": p.get("Merge-Type"),
                "payload": as_text(util.fully_decoded_payload(p)),
            }
            for p in message.walk()
            if not p.is_multipart()
        ]
        init._do_handlers(message, init._default_handlers(), PER_INSTANCE)
    finally:
        subp.subp = saved_subp
        sys.path[:] = saved_path
        # Part handlers are imported by file name (part-handler-000): the next drive's
        # must not find this one's in the module cache.
        for name in set(sys.modules) - saved_modules:
            if name.startswith("part-handler-"):
                del sys.modules[name]

    cloud_config_file = paths.get_ipath("cloud_config")
    text = b""
    if cloud_config_file and os.path.exists(cloud_config_file):
        with open(cloud_config_file, "rb") as f:
            text = f.read()
    result["cloud_config_text"] = text.decode("utf-8", "replace")
    cloud_config = gen.load_yaml(text) if text.strip() else {}
    result["cloud_config"] = cloud_config
    result["schema"] = gen.schema_check(text, scratch) if text.strip() else None
    result["scripts"] = tree_files(os.path.join(cloud_dir, "instance", "scripts"))
    result["scripts_by_frequency"] = tree_files(os.path.join(cloud_dir, "scripts"))
    result["boothooks"] = boothooks
    result["keys"] = key_lines(cloud_config, result["public_keys"])
    result["log_warnings"] = collect.since(start)
    return result


def main() -> None:
    scratch, release_root = sys.argv[1], sys.argv[2]
    expected = os.path.join(release_root, "usr", "lib", "python3", "dist-packages", "cloudinit")
    if os.path.realpath(os.path.dirname(gen.cloudinit.__file__)) != os.path.realpath(expected):
        raise SystemExit(f"cloudinit imported from {gen.cloudinit.__file__}, not from {expected}")
    collect = gen.Collect()
    collect.reset_root()
    sys_cfg = util.read_conf(os.path.join(release_root, "etc", "cloud", "cloud.cfg"))
    results = []
    for request in json.load(sys.stdin):
        try:
            results.append(consume(request, scratch, sys_cfg, collect))
        except Exception as e:  # reported per drive, asserted by the test
            results.append({"error": f"{type(e).__name__}: {e}"})
        collect.reset_root()
    json.dump({"version": gen.ci_version.version_string(), "results": results}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
