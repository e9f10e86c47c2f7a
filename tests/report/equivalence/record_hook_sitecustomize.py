"""Equivalence harness (not part of ddai): record every ddai-report --json document."""
import os
import sys

if os.environ.get("RF_RECORD"):
    import importlib.abc
    import importlib.machinery
    import json

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "ddai.report.render_json":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            orig = spec.loader.exec_module

            def exec_module(mod):
                orig(mod)
                real = mod.dumps

                def dumps(rep):
                    out = real(rep)
                    line = json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST"), "argv": sys.argv, "out": out})
                    fd = os.open(os.environ["RF_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    os.write(fd, (line + "\n").encode())
                    os.close(fd)
                    return out
                mod.dumps = dumps
            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Finder())
