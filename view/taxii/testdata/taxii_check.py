"""Reads every collection of a threatpipe TAXII 2.1 server with the real clients and prints a JSON
summary on stdout: taxii2-client pages through each collection (as_pages), stix2-validator
validates every object (strict), stix2 parses every object.

usage: taxii_check.py <discovery url> <user> <password> <page size>
"""
import json
import sys

import stix2
import stix2validator
from taxii2client.v21 import Server, as_pages

# uuid-check (103) asks for UUIDv4 ids on SDOs, a SHOULD of STIX 2.1 (section 2.9): threatpipe
# derives its ids with UUIDv5 from the address on purpose, so every replica and export names an
# address's indicator the same and consumers update it instead of piling up copies.
DISABLED = ["uuid-check"]


def main():
    url, user, password, per_page = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    server = Server(url, user=user, password=password)
    root = server.default
    opts = stix2validator.ValidationOptions(strict=True, disabled=DISABLED, version="2.1")
    summary = {"title": server.title, "api_root": root.title, "collections": {}, "validated": 0,
               "errors": [], "warnings": [], "parse_errors": [], "repeats": 0}
    for col in root.collections:
        ids, types, pages = set(), {}, 0
        for env in as_pages(col.get_objects, per_request=per_page):
            pages += 1
            for obj in env.get("objects", []):
                if obj["id"] in ids:
                    summary["repeats"] += 1
                ids.add(obj["id"])
                types[obj["type"]] = types.get(obj["type"], 0) + 1
                res = stix2validator.validate_instance(obj, opts)
                summary["validated"] += 1
                for e in res.errors:
                    summary["errors"].append("%s: %s" % (obj["id"], e))
                for w in res.warnings:
                    summary["warnings"].append("%s: %s" % (obj["id"], w))
                try:
                    stix2.parse(obj, allow_custom=False, version="2.1")
                except Exception as e:  # report every failure, not just the first
                    summary["parse_errors"].append("%s: %s" % (obj["id"], e))
        manifest = sum(len(m.get("objects", [])) for m in as_pages(col.get_manifest, per_request=per_page))
        summary["collections"][col.alias] = {"id": col.id, "can_read": col.can_read, "can_write": col.can_write,
                                             "objects": len(ids), "types": types, "pages": pages,
                                             "manifest": manifest}
    summary["errors"] = summary["errors"][:20]
    summary["warnings"] = summary["warnings"][:20]
    summary["parse_errors"] = summary["parse_errors"][:20]
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
