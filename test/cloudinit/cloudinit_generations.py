"""Reads config-drive trees with one cloud-init release's own code and prints what it understood.

A tree with `meta-data` at its root is a NoCloud seed and is read by that release's
DataSourceNoCloud (its seed-dir path: the same pathprefix2dict a mounted cidata volume
goes through); any other tree by DataSourceConfigDrive.read_config_drive.

The version-aware sibling of cloudinit_check.py: run with Debian's /usr/bin/python3 and
PYTHONPATH set to a release unpacked by tools/cloud-init-releases (its cloudinit package
then shadows the host's). argv: SCRATCH_DIR RELEASE_ROOT. The request on stdin is a JSON
list of {"dir": PATH, "macs": {MAC: NAME}}; the answer on stdout is
{"release": {...what this version has...}, "results": [one per request, in order]}.

What differs between 20.4 and 26.x is handled here and said in the answer, never papered
over: a renderer a version lacks is reported as lacking, a schema that covers only some
modules is reported with its scope. A failure inside one drive is that drive's "error".
"""

import contextlib
import copy
import email
import inspect
import io
import json
import logging
import os
import sys

import cloudinit
from cloudinit import helpers, ssh_util, subp, util
from cloudinit import version as ci_version
from cloudinit.cmd.devel import net_convert
from cloudinit.config import cc_set_passwords, cc_users_groups
from cloudinit.config import schema as ci_schema
from cloudinit.distros import fetch as fetch_distro
from cloudinit.distros import ug_util
from cloudinit.net import eni
from cloudinit.sources import DataSourceConfigDrive, DataSourceNoCloud, normalize_pubkey_data
from cloudinit.sources.helpers import openstack

RENDERERS = ("eni", "netplan", "networkd", "sysconfig", "network-manager")
# Each renderer with the distro family that uses it: the distro supplies its paths.
RENDERER_DISTRO = {"eni": "debian", "netplan": "debian", "networkd": "debian", "sysconfig": "rhel", "network-manager": "rhel"}


def load_yaml(text: bytes):
    # util.load_yaml is what user-data processing uses on every version we read.
    return util.load_yaml(text) or {}


def cloud_config_parts(user_data: bytes) -> list:
    if user_data.startswith(b"#cloud-config"):
        return [user_data]
    if user_data.startswith(b"Content-Type: multipart/"):
        msg = email.message_from_bytes(user_data)
        return [p.get_payload(decode=True) for p in msg.walk() if p.get_content_type() == "text/cloud-config"]
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


def output_kinds() -> list:
    """The -O choices this version's net-convert offers."""
    for action in net_convert.get_parser()._actions:
        if "--output-kind" in action.option_strings:
            return list(action.choices)
    return []


def schema_scope() -> dict:
    """Which keys this version's cloud-config schema covers at all.

    Before 22.2 only the modules that declared a schema were validated, so a key like
    chpasswd or users is accepted unchecked: the answer says so rather than pass it off
    as validated.
    """
    full = ci_schema.get_schema()
    if "$defs" in full or os.path.isdir(os.path.join(os.path.dirname(ci_schema.__file__), "schemas")):
        return {"kind": "full", "keys": sorted(full.get("properties", {}).keys())}
    keys = set()
    for part in full.get("allOf", []):
        keys.update(part.get("properties", {}).keys())
    return {"kind": "modules", "keys": sorted(keys)}


def schema_check(document: bytes, scratch: str) -> dict:
    """What `cloud-init schema -c FILE` reports on this version: errors and deprecations."""
    path = os.path.join(scratch, "user-data-part.yaml")
    with open(path, "wb") as f:
        f.write(document)
    out = io.StringIO()
    errors, deprecations, validated = [], [], True
    try:
        with contextlib.redirect_stdout(out):
            # 22.4 and later return False when they skipped validation (no jsonschema,
            # unknown part type); 20.4 returns None after validating.
            if ci_schema.validate_cloudconfig_file(path, ci_schema.get_schema()) is False:
                validated = False
    except ci_schema.SchemaValidationError as e:
        # 20.4 gives (path, message) tuples, later versions SchemaProblem named tuples.
        errors = [f"{p[0]}: {p[1]}" for p in e.schema_errors]
        deprecations = [f"{p[0]}: {p[1]}" for p in getattr(e, "schema_deprecations", ()) or ()]
    finally:
        os.unlink(path)
    printed = out.getvalue().strip()
    if printed:
        deprecations.append(printed)
    if not validated:
        errors.append("schema validation was skipped by this cloud-init")
    return {"errors": errors, "warnings": deprecations}


def network_schema_check(netcfg: dict) -> dict:
    """What 24.x and later check at boot before applying a network config (stages.py)."""
    schema_type = getattr(ci_schema, "SchemaType", None)
    if schema_type is None or not hasattr(schema_type, "NETWORK_CONFIG"):
        return {"available": False, "errors": [], "warnings": []}
    try:
        ci_schema.validate_cloudconfig_schema(
            config=netcfg, schema_type=schema_type.NETWORK_CONFIG, strict=True, log_deprecations=True
        )
    except ci_schema.SchemaValidationError as e:
        return {
            "available": True,
            "errors": [f"{p[0]}: {p[1]}" for p in e.schema_errors],
            "warnings": [f"{p[0]}: {p[1]}" for p in e.schema_deprecations],
        }
    return {"available": True, "errors": [], "warnings": []}


def render(input_file: str, kind: str, macs: dict, scratch: str, kinds: list, collect) -> dict:
    """`cloud-init devel net-convert` once per renderer: {renderer: {path: text}} or a reason."""
    out = {}
    for output_kind in RENDERERS:
        if output_kind not in kinds:
            out[output_kind] = {"lacking": f"net-convert of {ci_version.version_string()} has no -O {output_kind}"}
            continue
        target = os.path.join(scratch, "net-" + output_kind)
        distro = RENDERER_DISTRO[output_kind]
        argv = ["-p", input_file, "-k", kind, "-d", target, "-D", distro, "-O", output_kind]
        for mac, name in macs.items():
            argv += ["-m", f"{name},{mac}"]
        # handle_args edits the distro class's renderer_configs in place (it trims the
        # netplan path on every call) and adds a stderr log handler: harmless in the
        # one-shot CLI, wrong in one process converting many drives.
        distro_cls = fetch_distro(distro)
        saved = copy.deepcopy(distro_cls.renderer_configs)
        before = collect.begin()
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                net_convert.handle_args("net-convert", net_convert.get_parser().parse_args(argv))
            files = {}
            for root, _dirs, names in os.walk(target):
                for name in names:
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as f:
                        files[os.path.relpath(path, target)] = f.read()
            out[output_kind] = {"files": files, "log_warnings": collect.since(before)}
        except Exception as e:  # one renderer failing must not hide the others
            out[output_kind] = {"error": f"{type(e).__name__}: {e}", "log_warnings": collect.since(before)}
        finally:
            distro_cls.renderer_configs = saved
            collect.reset_root()
            util.del_dir(target)
    return out


class Recorder:
    """Stands in for the commands cloud-init would run: nothing touches this host."""

    def __init__(self):
        self.commands = []

    def subp(self, args, *rest, **kwargs):
        data = kwargs.get("data")
        if data is None and rest:
            data = rest[0]
        if isinstance(data, bytes):
            data = data.decode()
        self.commands.append({"args": [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)], "data": data})
        result = getattr(subp, "SubpResult", None)
        return result("", "") if result else ("", "")


class FakeCloud:
    def __init__(self, distro, keys):
        self.distro = distro
        self._keys = keys

    def get_public_ssh_keys(self):
        return list(self._keys)


def call_handle(module, name, cfg, cloud):
    """Config modules take (name, cfg, cloud, log, args) before 24.1, (name, cfg, cloud, args) since."""
    params = list(inspect.signature(module.handle).parameters)
    if len(params) == 5:
        module.handle(name, cfg, cloud, logging.getLogger(module.__name__), [])
    else:
        module.handle(name, cfg, cloud, [])


def applied(cloud_config: dict, sys_cfg: dict, public_keys: list, scratch: str, collect) -> dict:
    """What cc_users_groups and cc_set_passwords of this version do with our user-data.

    The real module code runs against the real Debian distro class, create_user included;
    only the commands it runs (useradd, chpasswd, passwd), the files it writes (sudoers,
    authorized_keys) and the sshd_config edit are recorded instead of done, and the
    accounts it looks up are a Debian image's, so the answer is what this version would
    do on a guest and nothing on this host changes.
    """
    cfg = util.mergemanydict([copy.deepcopy(cloud_config), copy.deepcopy(sys_cfg)])
    system_info = cfg.get("system_info", {})
    distro_name = system_info.get("distro", "debian")
    paths = helpers.Paths({"cloud_dir": os.path.join(scratch, "cloud"), "run_dir": os.path.join(scratch, "run")})
    distro = fetch_distro(distro_name)(distro_name, system_info, paths)
    recorder = Recorder()
    created = []
    # The guest's shadow file as a Debian image has it (root exists, password "*"), read
    # by 24.x and later to decide whether lock_passwd: false may unlock an existing user.
    shadow = os.path.join(scratch, "shadow")
    with open(shadow, "w", encoding="utf-8") as f:
        f.write("root:*:19000:0:99999:7:::\n")
    if hasattr(distro, "shadow_fn"):
        distro.shadow_fn = shadow
    real_create_user = distro.create_user

    def create_user(name, **kwargs):
        created.append({"name": name, **{k: v for k, v in kwargs.items() if isinstance(v, (str, bool, list, int, type(None)))}})
        # The release's own create_user, so its decisions and warnings are its own; only
        # its commands and file writes (below) are recorded instead of done.
        return real_create_user(name, **kwargs)

    distro.create_user = create_user
    distro.create_group = lambda name, members=None: created.append({"group": name, "members": members or []})
    wrote = []
    ssh_pwauth = []
    patches = [
        (subp, "subp", recorder.subp),
        # The guest's accounts, not this host's: a Debian image has root and these groups.
        (util, "is_user", lambda name: name == "root"),
        (util, "is_group", lambda name: name in ("root", "adm", "sudo", "users")),
        (util, "write_file", lambda path, *a, **k: wrote.append(str(path))),
        (util, "append_file", lambda path, *a, **k: wrote.append(str(path))),
        (util, "ensure_dir", lambda path, *a, **k: None),
        (ssh_util, "setup_user_keys", lambda keys, user, *a, **k: wrote.append(f"~{user}/.ssh/authorized_keys: {len(keys)} keys")),
        (cc_set_passwords, "handle_ssh_pwauth", lambda pw_auth, *a, **k: ssh_pwauth.append(pw_auth)),
    ]
    for attr in ("write_sudo_rules", "write_doas_rules", "ensure_sudo_dir"):
        if hasattr(distro, attr):
            patches.append((distro, attr, lambda *a, _attr=attr, **k: wrote.append(f"{_attr} {a[0] if a else ''}")))
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    before = collect.begin()
    result = {}
    try:
        cloud = FakeCloud(distro, public_keys)
        for module, name in ((cc_users_groups, "users_groups"), (cc_set_passwords, "set_passwords")):
            try:
                call_handle(module, name, cfg, cloud)
            except Exception as e:
                result.setdefault("errors", []).append(f"{name}: {type(e).__name__}: {e}")
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
    passwords = []
    expired = []
    for command in recorder.commands:
        args = command["args"]
        if args and args[0] == "chpasswd":
            for line in (command["data"] or "").splitlines():
                user, _, value = line.partition(":")
                passwords.append({"user": user, "hashed": "-e" in args, "value": value})
        elif args[:2] == ["passwd", "--expire"]:
            expired.append(args[2])
    result.update(
        {
            "created": created,
            "passwords": passwords,
            "expired": expired,
            "ssh_pwauth": ssh_pwauth,
            "commands": [c["args"] for c in recorder.commands],
            # In order, with the accounts each chpasswd was fed: whether an unlock came
            # after a password was set decides whether it changed anything.
            "command_log": [
                {
                    "args": c["args"],
                    "users": [line.partition(":")[0] for line in (c["data"] or "").splitlines()] if c["args"][:1] == ["chpasswd"] else [],
                }
                for c in recorder.commands
            ],
            "wrote": wrote,
            "log_warnings": collect.since(before),
        }
    )
    return result


def effective_users(cloud_config: dict, sys_cfg: dict) -> dict:
    merged = util.mergemanydict([copy.deepcopy(cloud_config), copy.deepcopy(sys_cfg)])
    distro_cfg = merged.get("system_info", {}).get("distro", "debian")
    distro = fetch_distro(distro_cfg)(distro_cfg, merged.get("system_info", {}), None)
    users, _groups = ug_util.normalize_users_groups(merged, distro)
    default_user, _ = ug_util.extract_default(users)
    return {"users": sorted(users), "default_user": default_user}


class Collect(logging.Handler):
    """What cloud-init logs at WARNING or above (DEPRECATED is 35 from 23.x on)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.levelname}: {record.getMessage()}")

    def begin(self) -> int:
        return len(self.messages)

    def since(self, start: int) -> list:
        return self.messages[start:]

    def reset_root(self):
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler is not self:
                root.removeHandler(handler)
        if self not in root.handlers:
            root.addHandler(self)
        root.setLevel(logging.WARNING)


def vendor(raw, cloud_config: dict, scratch: str, collect) -> dict:
    """What this release makes of the vendor data its datasource hands the user-data
    processor (ConfigDrive: vendor_data.json through sources.convert_vendordata; NoCloud:
    the vendor-data file as it is), that text's schema check, and the bootcmd left once
    user data is merged over it (helpers.ConfigMerger puts cloud_config before
    vendor_cloud_config: user data wins)."""
    start = collect.begin()
    out = {"raw_type": type(raw).__name__}
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, str) and raw.startswith("#cloud-config"):
        out["schema"] = schema_check(raw.encode(), scratch)
        vendor_cfg = load_yaml(raw.encode())
        out["cloud_config"] = vendor_cfg
        out["merged_bootcmd"] = util.mergemanydict([copy.deepcopy(cloud_config), vendor_cfg]).get("bootcmd")
        out["shellified"] = util.shellify(vendor_cfg.get("bootcmd") or [])
    out["log_warnings"] = collect.since(start)
    return out


def read_config_drive(directory: str) -> dict:
    """A config-2 tree as DataSourceConfigDrive reads it, in the fields check() judges."""
    from cloudinit import sources

    drive = DataSourceConfigDrive.read_config_drive(directory)
    md = drive["metadata"]
    out = {
        "instance_id": md.get("instance-id"),
        "local_hostname": md.get("local-hostname"),
        "public_keys": normalize_pubkey_data(md.get("public_keys", {})),
        "user_data": drive.get("userdata") or b"",
    }
    if "vendordata" in drive and drive["vendordata"] is not None:
        # DataSourceConfigDrive._get_data converts it before anything else sees it.
        out["vendordata"] = sources.convert_vendordata(drive["vendordata"])
    net = drive.get("networkdata")
    if net is not None:
        out["network_json"] = net
        out["network_file"] = os.path.join(directory, "openstack", "latest", "network_data.json")
    if drive.get("network_config"):
        out["eni_text"] = drive["network_config"]
    return out


def read_nocloud(directory: str, scratch: str, sys_cfg: dict) -> dict:
    """A NoCloud tree as this release's DataSourceNoCloud reads a seed: its own _get_data,
    with the host's block devices and DMI hidden (it would otherwise look for cidata
    volumes on this machine), the tree linked in as the seed dir <cloud_dir>/seed/nocloud."""
    cloud_dir = os.path.join(scratch, "nocloud-cloud")
    seed = os.path.join(cloud_dir, "seed")
    os.makedirs(seed, exist_ok=True)
    link = os.path.join(seed, "nocloud")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(directory, link)
    paths = helpers.Paths({"cloud_dir": cloud_dir, "run_dir": os.path.join(scratch, "run")})
    distro = fetch_distro("debian")("debian", {}, paths)
    ds = DataSourceNoCloud.DataSourceNoCloud(copy.deepcopy(sys_cfg), distro, paths)
    patches = [(util, "find_devs_with", lambda *a, **k: [])]
    if hasattr(DataSourceNoCloud, "dmi"):
        patches.append((DataSourceNoCloud.dmi, "read_dmi_data", lambda *a, **k: None))
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    try:
        if not ds._get_data():
            raise ValueError("DataSourceNoCloud did not claim the seed")
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
    seeds = [x for x in ds.seed.split(",") if x]
    if seeds != [link]:
        raise ValueError(f"DataSourceNoCloud read {ds.seed}, not only the seed {link}")
    user_data = ds.userdata_raw or b""
    out = {
        "instance_id": ds.get_instance_id(),
        "local_hostname": ds.metadata.get("local-hostname"),
        "public_keys": ds.get_public_ssh_keys(),
        "user_data": user_data.encode() if isinstance(user_data, str) else user_data,
        "dsmode": ds.dsmode,
    }
    if ds.vendordata_raw:
        out["vendordata"] = ds.vendordata_raw
    netcfg = ds._network_config
    if netcfg:
        out["network_v1"] = netcfg
        out["network_file"] = os.path.join(directory, "network-config")
    eni_text = ds.metadata.get("network-interfaces")
    if eni_text and not netcfg:
        out["eni_text"] = eni_text
    return out


def check(request: dict, scratch: str, sys_cfg: dict, kinds: list, collect: Collect) -> dict:
    result = {}
    start = collect.begin()
    nocloud = os.path.isfile(os.path.join(request["dir"], "meta-data"))
    drive = read_nocloud(request["dir"], scratch, sys_cfg) if nocloud else read_config_drive(request["dir"])
    result["datasource"] = "NoCloud" if nocloud else "ConfigDrive"
    for key in ("instance_id", "local_hostname", "public_keys"):
        result[key] = drive[key]
    user_data = drive["user_data"]
    result["mime_parts"] = mime_parts(user_data)
    parts = cloud_config_parts(user_data)
    result["schema"] = [schema_check(p, scratch) for p in parts]
    cloud_config = util.mergemanydict([load_yaml(p) for p in parts])
    result["cloud_config"] = cloud_config
    result["users"] = effective_users(cloud_config, sys_cfg)
    result["log_warnings"] = collect.since(start)
    result["applied"] = applied(cloud_config, sys_cfg, result["public_keys"], scratch, collect)
    if "vendordata" in drive:
        result["vendor"] = vendor(drive["vendordata"], cloud_config, scratch, collect)
    macs = request.get("macs", {})
    if "network_json" in drive or "network_v1" in drive:
        start = collect.begin()
        if nocloud:
            result["network"] = drive["network_v1"]
            kind = "yaml"
        else:
            result["network"] = openstack.convert_net_json(drive["network_json"], known_macs=macs)
            kind = "network_data.json"
        result["network_schema"] = network_schema_check(result["network"])
        result["network_schema"]["log_warnings"] = collect.since(start)
        result["rendered"] = render(drive["network_file"], kind, macs, scratch, kinds, collect)
    eni_text = drive.get("eni_text")
    if eni_text:
        text = eni_text.decode() if isinstance(eni_text, bytes) else eni_text
        result["eni"] = eni.convert_eni_data(text)
        eni_file = os.path.join(scratch, "interfaces")
        with open(eni_file, "w", encoding="utf-8") as f:
            f.write(text)
        result["rendered"] = render(eni_file, "eni", macs, scratch, kinds, collect)
        os.unlink(eni_file)
    return result


def main() -> None:
    scratch, release_root = sys.argv[1], sys.argv[2]
    # The test is only worth anything if the release's code is what runs, not the host's.
    expected = os.path.join(release_root, "usr", "lib", "python3", "dist-packages", "cloudinit")
    if os.path.realpath(os.path.dirname(cloudinit.__file__)) != os.path.realpath(expected):
        raise SystemExit(f"cloudinit imported from {cloudinit.__file__}, not from {expected}")
    collect = Collect()
    collect.reset_root()
    # The release's own /etc/cloud/cloud.cfg: default user and modules differ by version.
    sys_cfg = util.read_conf(os.path.join(release_root, "etc", "cloud", "cloud.cfg"))
    kinds = output_kinds()
    release = {
        "version": ci_version.version_string(),
        "module": os.path.dirname(cloudinit.__file__),
        "output_kinds": kinds,
        "schema_scope": schema_scope(),
        "default_user": (sys_cfg.get("system_info", {}).get("default_user") or {}).get("name"),
    }
    results = []
    for request in json.load(sys.stdin):
        try:
            results.append(check(request, scratch, sys_cfg, kinds, collect))
        except Exception as e:  # reported per drive, asserted by the test
            results.append({"error": f"{type(e).__name__}: {e}"})
        collect.reset_root()
    json.dump({"release": release, "results": results}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
