"""A loopback stand-in of the Superb AI Suite API, just enough for the real `spb` CLI (spb-cli 0.19.4)
to run `spb upload dataset --include-label` and `spb download` against it: try the labeling round trip (and
the active-learning loop's Suite steps) offline, as the tests do.

    python -m cctv.suite_standin --project cctv-mask-detector --port 8765
    # then, in another shell, what it prints: SPB_APP_API_ENDPOINT=http://127.0.0.1:8765 ... spb upload ...

It keeps what is uploaded in memory (gone when it stops); labels come back as uploaded (the pre-labels), in
the status `--label_status` (WORKING, as a project being labeled; SUBMITTED lets the loop take them).

What spb-cli does (read from its source, spb/cli_core/commands/label_data.py and the managers):
- `POST /v3/graphql` `project(name:$name)` -> the project (id, labelInterface, workapp, ...).
- upload, per image: `POST /graphql` `mutation {createAsset(file:"",fileName:..,dataKey:..,dataset:..,
  projectId:..){... presignedURL}}`, then `PUT <presignedURL>` with the image bytes.
- upload, per `<data_key>.json` label file: `POST /v2/graphql` `labels(projectId,dataset,dataKey,labelType)`
  to find the label, `mutation updateLabels(id,projectId,tags,workapp,result)` which answers an
  `infoWritePresignedUrl`, then `PUT` of the label info (version/meta/result/tags) to that URL.
- download: `labels(projectId,labelType, page, pageSize)`, for each label `GET infoReadPresignedUrl` (its
  `result`) and `GET dataUrl` (the image); writes `<dir>/<dataset>/<data_key>` and `<data_key>.json`.
The presigned URLs point back at this server (`/s3/...`), so nothing leaves 127.0.0.1.
"""
import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

# The label API names the workapp as spb.labels.label.WorkappType does; the project API as "image-siesta".
LABEL_WORKAPP = {"image-siesta": "IMAGE_SIESTA", "video-siesta": "VIDEO_SIESTA"}
# A new image project with two box classes, as the README has you create it in the Suite.
LABEL_INTERFACE = {
    "type": "image-siesta", "version": "0.6.5", "data_type": "image", "categorization": {"properties": []},
    "object_detection": {"keypoints": [], "object_groups": [], "annotation_types": ["box"], "object_classes": [
        {"id": f"00000000-0000-0000-0000-00000000000{i}", "name": name, "color": color, "properties": [],
         "constraints": {}, "ai_class_map": [], "annotation_type": "box"}
        for i, (name, color) in enumerate((("protected", "#00FF00"), ("unprotected", "#FF0000")), start=1)]},
}
_INLINE_ARG = re.compile(r'(\w+):("(?:[^"\\]|\\.)*"|[^,()\s]+)')


@dataclass
class StoredLabel:
    label_id: str
    data_id: str
    dataset: str
    data_key: str
    image: bytes = None
    info: dict = None  # what spb PUT to the label-info URL: {"version", "meta", "result", "tags"}
    tags: list = field(default_factory=list)


class SuiteStandIn:
    """`with SuiteStandIn(project_name, label_interface) as suite:` serves on 127.0.0.1 (a free port);
    `suite.endpoint` is the value for SPB_APP_API_ENDPOINT; `suite.labels` keeps what was uploaded."""

    def __init__(self, project_name, label_interface=None, team_name="team", access_key="key",
                 workapp="image-siesta", port=0, label_status="WORKING"):
        self.project = {
            "id": str(uuid.uuid4()), "name": project_name, "labelInterface": label_interface or LABEL_INTERFACE,
            "workapp": workapp, "settings": {}, "labelCount": 0, "isPublic": False,
            "createdAt": None, "createdBy": None, "lastUpdatedAt": None, "lastUpdatedBy": None,
            "progress": 0, "submittedLabelCount": 0, "inProgressLabelCount": 0,
            "skippedLabelCount": 0, "stats": [],
        }
        self.auth = "Basic " + base64.b64encode(f"{team_name}:{access_key}".encode()).decode()
        self.labels = {}  # (dataset, data_key) -> StoredLabel
        self.calls = []  # (method, path, operation) in arrival order
        self._lock = threading.Lock()
        self._server = None
        self.port, self.label_status = port, label_status

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self):
        handler = type("Handler", (_Handler,), {"suite": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    @property
    def endpoint(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- GraphQL ---------------------------------------------------------------------------------
    def graphql(self, query, variables):
        op = re.search(r"\{\s*(\w+)", query).group(1)
        args = dict(variables or {})
        head = query[query.index(op):]
        head = head[: head.find("{")]  # the operation's argument list
        for name, value in _INLINE_ARG.findall(head):
            if not value.startswith("$"):
                args[name] = json.loads(value) if value.startswith('"') else _number(value)
        with self._lock:
            self.calls.append(("POST", "graphql", op))
            handler = getattr(self, f"_op_{op}", None)
            if handler is None:
                return {"errors": [{"message": f"stand-in: unsupported operation {op}",
                                    "extensions": {"code": 400}}]}
            return {"data": {op: handler(args)}}

    def _op_project(self, args):
        return self.project if args.get("name") == self.project["name"] else None

    def _op_projects(self, args):
        return {"count": 1, "edges": [self.project]}

    def _op_createAsset(self, args):
        if args.get("projectId") != self.project["id"]:
            raise _GraphQLError(404)
        key = (args["dataset"], args["dataKey"])
        if key in self.labels:
            raise _GraphQLError(409)
        label = StoredLabel(str(uuid.uuid4()), str(uuid.uuid4()), *key)
        self.labels[key] = label
        return {"id": label.data_id, "labelId": label.label_id, "file": "", "fileName": args.get("fileName"),
                "fileSize": args.get("fileSize"), "dataset": label.dataset, "dataKey": label.data_key,
                "presignedURL": f"{self.endpoint}/s3/data/{label.data_id}"}

    def _op_labels(self, args):
        if args.get("projectId") != self.project["id"]:
            raise _GraphQLError(404)
        found = [lab for lab in self.labels.values()
                 if args.get("dataset") in (None, lab.dataset) and args.get("dataKey") in (None, lab.data_key)]
        page, size = int(args.get("page", 1)), int(args.get("pageSize", 10))
        return {"count": len(found), "edges": [self._label_json(lab) for lab in found[(page - 1) * size: page * size]]}

    def _op_updateLabels(self, args):
        label = self._label_by_id(args.get("id"))
        label.tags = (args.get("result") or {}).get("tags") or label.tags
        return dict(self._label_json(label), infoWritePresignedUrl=f"{self.endpoint}/s3/info/{label.label_id}")

    def _label_by_id(self, label_id):
        for label in self.labels.values():
            if label.label_id == label_id:
                return label
        raise _GraphQLError(404)

    def _label_json(self, lab):
        return {
            "id": lab.label_id, "projectId": self.project["id"], "tags": [], "status": self.label_status,
            "stats": [], "workAssignee": None, "reviewer": None, "reviewRound": 0, "lastReviewAction": None,
            "labelType": "MAIN_LABEL", "workapp": LABEL_WORKAPP[self.project["workapp"]], "relatedLabelMethod": None,
            "consensusStatus": "", "consistencyScore": 0.0, "dataId": lab.data_id, "dataset": lab.dataset,
            "dataKey": lab.data_key, "dataUrl": f"{self.endpoint}/s3/data/{lab.data_id}", "result": None,
            "infoReadPresignedUrl": f"{self.endpoint}/s3/info/{lab.label_id}", "infoWritePresignedUrl": None,
            "createdBy": None, "createdAt": None, "lastUpdatedBy": None, "lastUpdatedAt": None,
            "infoLastUpdatedBy": None, "lastReviewedAt": None,
        }

    # --- presigned storage -----------------------------------------------------------------------
    def put_object(self, kind, object_id, body):
        with self._lock:
            self.calls.append(("PUT", kind, object_id))
            for label in self.labels.values():
                if kind == "data" and label.data_id == object_id:
                    label.image = body
                    return True
                if kind == "info" and label.label_id == object_id:
                    label.info = json.loads(body)
                    return True
        return False

    def get_object(self, kind, object_id):
        with self._lock:
            self.calls.append(("GET", kind, object_id))
            for label in self.labels.values():
                if kind == "data" and label.data_id == object_id:
                    return label.image
                if kind == "info" and label.label_id == object_id and label.info is not None:
                    return json.dumps(label.info).encode()
        return None


class _GraphQLError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _number(text):
    try:
        return int(text)
    except ValueError:
        return text


class _Handler(BaseHTTPRequestHandler):
    suite: SuiteStandIn = None

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _storage_target(self):
        match = re.fullmatch(r"/s3/(data|info)/([\w-]+)", unquote(self.path))
        return match.groups() if match else (None, None)

    def do_POST(self):
        if self.path not in ("/graphql", "/v2/graphql", "/v3/graphql"):
            return self._send(404)
        if self.headers.get("Authorization") != self.suite.auth:
            return self._send(401)
        payload = json.loads(self._body() or b"{}")
        try:
            answer = self.suite.graphql(payload.get("query", ""), payload.get("variables"))
        except _GraphQLError as e:
            answer = {"errors": [{"message": "stand-in error", "extensions": {"code": e.code}}]}
        self._send(200, json.dumps(answer).encode())

    def do_PUT(self):
        kind, object_id = self._storage_target()
        ok = kind is not None and self.suite.put_object(kind, object_id, self._body())
        self._send(200 if ok else 404)

    def do_GET(self):
        kind, object_id = self._storage_target()
        body = self.suite.get_object(kind, object_id) if kind else None
        if body is None:
            return self._send(404)
        self._send(200, body, "application/octet-stream")


def main(argv=None):
    import argparse
    import time

    p = argparse.ArgumentParser(description="A loopback stand-in of the Superb AI Suite for the spb CLI: try the "
                                            "labeling round trip offline. Ctrl-C stops it.")
    p.add_argument("--project", default="cctv-mask-detector", help="the project name spb commands use (-p)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--project_json", default=None,
                   help="a project.json to serve as the label interface (default: protected/unprotected boxes)")
    p.add_argument("--label_status", default="WORKING",
                   help="status of every label it hands back (SUBMITTED: as if labeled, for active_learning.py)")
    opt = p.parse_args(argv)
    interface = json.loads(open(opt.project_json).read()) if opt.project_json else None
    with SuiteStandIn(opt.project, interface, port=opt.port, label_status=opt.label_status) as suite:
        print(f"Suite stand-in on {suite.endpoint}, project '{opt.project}' (team 'team', access key 'key'); "
              f"nothing leaves this machine. In another shell:\n"
              f"  export SPB_APP_API_ENDPOINT={suite.endpoint} SPB_TEAM_NAME=team SPB_ACCESS_KEY=key "
              f"NO_PROXY=127.0.0.1,localhost\n"
              f"  cd frames && ../.venv/bin/spb upload dataset -p {opt.project} -n entrance --include-label -y && cd ..\n"
              f"  mkdir -p suite_download && .venv/bin/spb download -p {opt.project} -d suite_download -y\n"
              f"Ctrl-C stops it (what was uploaded is gone then).", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
