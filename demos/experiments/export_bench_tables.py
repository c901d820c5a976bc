"""Write the tables of ``bench_tables.py`` from the package that ships them (run once, outside npflow).

Needs ``vega_datasets`` (0.9.0, which ships ``cars.json`` and ``seattle-weather.csv`` inside the
package) but not pandas; writes gzipped CSV files with a header line and ``NA`` for a missing
cell into ``demos/experiments/data/`` (see ``data/PROVENANCE.md``). The penguins table is
npflow's own (``npflow/_files/penguins.csv.gz``).

    /tmp/venv-tab/bin/python demos/experiments/export_bench_tables.py

- ``cars.csv.gz``: the 406 cars of ``cars.json``; ``Name`` (an identifier) left out, ``Year``
  (``"1970-01-01"``) written as the integer year.
- ``seattle_weather.csv.gz``: the 1,461 days of ``seattle-weather.csv``; ``date``
  (``2012/01/01``) written as two integer columns ``year`` and ``month``.
"""
import csv
import gzip
import hashlib
import importlib.metadata
import json
import os

import vega_datasets

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SOURCE = os.path.join(os.path.dirname(vega_datasets.__file__), "_data")


def number(value):
    """A JSON number as the text a person would write (``18``, ``11.5``), ``NA`` when null."""
    if value is None:
        return "NA"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write(name, header, rows):
    path = os.path.join(HERE, name)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9,
                                                mtime=0, filename="") as file:
        text = [",".join(header)] + [",".join(row) for row in rows]
        file.write(("\n".join(text) + "\n").encode("utf-8"))
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    print(f"{name}: {len(rows)} rows, {os.path.getsize(path)} bytes, sha256 {digest}")


def cars():
    with open(os.path.join(SOURCE, "cars.json"), encoding="utf-8") as file:
        records = json.load(file)
    header = ["Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower", "Weight_in_lbs",
              "Acceleration", "Year", "Origin"]
    rows = [[number(r[c]) for c in header[:-2]] + [r["Year"][:4], r["Origin"]] for r in records]
    write("cars.csv.gz", header, rows)


def seattle_weather():
    with open(os.path.join(SOURCE, "seattle-weather.csv"), newline="", encoding="utf-8") as file:
        records = list(csv.DictReader(file))
    header = ["year", "month", "precipitation", "temp_max", "temp_min", "wind", "weather"]
    rows = [[r["date"][:4], str(int(r["date"][5:7]))] +
            [r[c] for c in ("precipitation", "temp_max", "temp_min", "wind", "weather")]
            for r in records]
    write("seattle_weather.csv.gz", header, rows)


if __name__ == "__main__":
    print("vega_datasets", importlib.metadata.version("vega_datasets"))
    cars()
    seattle_weather()
