"""Reads config-drive trees with cloud-init's own code and prints what it understood, as JSON.

Run with Debian's /usr/bin/python3 (it sees the cloud-init package). One process checks
many drives: the request on stdin is a JSON list of {"dir": PATH, "macs": {MAC: NAME}},
the answer on stdout a JSON list of results in the same order. A failure inside one drive
is reported in that drive's result ("error"), never as a crash, so one bad case does not
hide the others.
"""

import email
import io
import json
import logging
import os
import sys
import contextlib
import copy

from cloudinit import util
from cloudinit.cmd.devel import net_convert
from cloudinit.config import schema as ci_schema
from cloudinit.distros import fetch as fetch_distro
from cloudinit.distros import ug_util
from cloudinit.net import eni
from cloudinit.sources import DataSourceConfigDrive, normalize_pubkey_data
from cloudinit.sources.helpers import openstack

SYSTEM_CFG = "/etc/cloud/cloud.cfg"


def cloud_config_parts(user_data: bytes) -> list:
    """The cloud-config documents inside user_data (plain or MIME multipart)."""
    if user_data.startswith(b"#cloud-config"):
        return [user_data]
    if user_data.startswith(b"Content-Type: multipart/"):
        msg = email.message_from_bytes(user_data)
        return [
            part.get_payload(decode=True)
            for part in msg.walk()
            if part.get_content_type() == "text/cloud-config"
        ]
    return []


def mime_parts(user_data: bytes) -> list:
    if not user_data.startswith(b"Content-Type: multipart/"):
        return []
    msg = email.message_from_bytes(user_data)
    return [
        {"type": p.get_content_type(), "text": p.get_payload(decode=True).decode("utf-8")}
        for p in msg.walk()
        if not p.is_multipart()
    ]


def schema_check(document: bytes, scratch: str) -> dict:
    """What `cloud-init schema -c FILE` reports: errors and deprecation warnings."""
    path = os.path.join(scratch, "user-data-part.yaml")
    with open(path, "wb") as f:
        f.write(document)
    out = io.StringIO()
    errors, deprecations = [], []
    try:
        with contextlib.redirect_stdout(out):
            ci_schema.validate_cloudconfig_file(path, ci_schema.get_schema())
    except ci_schema.SchemaValidationError as e:
        errors = [f"{p.path}: {p.message}" for p in e.schema_errors]
        deprecations = [f"{p.path}: {p.message}" for p in e.schema_deprecations]
    finally:
        os.unlink(path)
    printed = out.getvalue().strip()
    if printed:
        deprecations.append(printed)
    return {"errors": errors, "warnings": deprecations}


def rendered(network_file: str, kind: str, macs: dict, scratch: str) -> dict:
    """What `cloud-init devel net-convert` writes for netplan and ENI: {kind: {path: text}}."""
    out = {}
    for output_kind in ("netplan", "eni"):
        target = os.path.join(scratch, "net-" + output_kind)
        argv = ["-p", network_file, "-k", kind, "-d", target, "-D", "debian", "-O", output_kind]
        for mac, name in macs.items():
            argv += ["-m", f"{name},{mac}"]
        # handle_args edits the distro class's renderer_configs in place (it trims the
        # netplan path once per call), which is harmless in the one-shot CLI but not in
        # one process that converts many drives: restore it after every call.
        distro_cls = fetch_distro("debian")
        saved = copy.deepcopy(distro_cls.renderer_configs)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                net_convert.handle_args("net-convert", net_convert.get_parser().parse_args(argv))
        finally:
            distro_cls.renderer_configs = saved
        files = {}
        for root, _dirs, names in os.walk(target):
            for name in names:
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    files[os.path.relpath(path, target)] = f.read()
        out[output_kind] = files
        util.del_dir(target)
    return out


def effective_users(cloud_config: dict) -> dict:
    """The users cloud-init would create on Debian: user-data merged over cloud.cfg."""
    sys_cfg = util.read_conf(SYSTEM_CFG)
    merged = util.mergemanydict([cloud_config, sys_cfg])
    distro_cfg = merged.get("system_info", {}).get("distro", "debian")
    distro = fetch_distro(distro_cfg)(distro_cfg, merged.get("system_info", {}), None)
    users, _groups = ug_util.normalize_users_groups(merged, distro)
    default_user, _ = ug_util.extract_default(users)
    return {"users": sorted(users), "default_user": default_user}


class Collect(logging.Handler):
    """Warnings cloud-init logs while reading a drive (deprecations show up only here)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def check(request: dict, scratch: str) -> dict:
    result = {}
    collect = Collect()
    logging.getLogger().addHandler(collect)
    result["log_warnings"] = collect.messages
    drive = DataSourceConfigDrive.read_config_drive(request["dir"])
    md = drive["metadata"]
    result["instance_id"] = md.get("instance-id")
    result["local_hostname"] = md.get("local-hostname")
    # A v2 drive keeps meta_data's own key name (SourceMixin.get_public_ssh_keys).
    result["public_keys"] = normalize_pubkey_data(md.get("public_keys", {}))
    user_data = drive.get("userdata") or b""
    result["mime_parts"] = mime_parts(user_data)
    parts = cloud_config_parts(user_data)
    result["schema"] = [schema_check(p, scratch) for p in parts]
    cloud_config = util.mergemanydict([util.load_yaml(p) or {} for p in parts])
    result["cloud_config"] = cloud_config
    # normalize_users_groups consumes the entries it reads (pops "name").
    result["users"] = effective_users(copy.deepcopy(cloud_config))
    net = drive.get("networkdata")
    if net is not None:
        result["network"] = openstack.convert_net_json(net, known_macs=request.get("macs", {}))
        network_file = os.path.join(request["dir"], "openstack", "latest", "network_data.json")
        result["rendered"] = rendered(network_file, "network_data.json", request.get("macs", {}), scratch)
    eni_text = drive.get("network_config")
    if eni_text:
        result["eni"] = eni.convert_eni_data(eni_text.decode() if isinstance(eni_text, bytes) else eni_text)
        eni_file = os.path.join(scratch, "interfaces")
        with open(eni_file, "wb") as f:
            f.write(eni_text if isinstance(eni_text, bytes) else eni_text.encode())
        result["rendered"] = rendered(eni_file, "eni", request.get("macs", {}), scratch)
        os.unlink(eni_file)
    logging.getLogger().removeHandler(collect)
    return result


def main() -> None:
    # Nothing on stderr; warnings are collected per drive by Collect.
    logging.getLogger().setLevel(logging.WARNING)
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
    scratch = sys.argv[1]
    answers = []
    for request in json.load(sys.stdin):
        try:
            answers.append(check(request, scratch))
        except Exception as e:  # reported per drive, asserted by the test
            answers.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(answers, sys.stdout, default=str)


if __name__ == "__main__":
    main()
