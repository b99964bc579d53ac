"""Make broken copies of a good checkpoint, one per way a file can be wrong.

  bad_checkpoints.py GOOD_DIR OUT_DIR
writes OUT_DIR/<case>/{config.json, model.safetensors, vocab.txt} for every case below."""
import json
import os
import shutil
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write(path, header, body, raw_len=None):
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if raw_len is None else raw_len))
        f.write(h)
        f.write(body)


def main():
    good, out = sys.argv[1], sys.argv[2]
    st = os.path.join(good, "model.safetensors")
    header, body = read(st)
    names = [k for k in header if k != "__metadata__"]
    qkey = next(k for k in names if k.endswith("layer.0.attention.self.key.weight"))

    def case(name):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for f in ("config.json", "vocab.txt", "model.safetensors"):
            shutil.copy(os.path.join(good, f), d)
        return d

    d = case("truncated")
    with open(st, "rb") as f:
        data = f.read()
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(data[: len(data) - 1000])

    d = case("tiny_file")
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(b"\x05\x00")

    d = case("header_past_end")
    write(os.path.join(d, "model.safetensors"), header, body, raw_len=len(data) + 10)

    d = case("bad_json")
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        h = b'{"a": [1, 2'
        f.write(struct.pack("<Q", len(h)) + h + body)

    d = case("offsets_outside")
    h = json.loads(json.dumps(header))
    b0, e0 = h[qkey]["data_offsets"]
    h[qkey]["data_offsets"] = [b0 + len(body), e0 + len(body)]
    write(os.path.join(d, "model.safetensors"), h, body)

    d = case("overlap")
    h = json.loads(json.dumps(header))
    other = next(k for k in names if k != qkey and h[k]["data_offsets"][0] == 0)
    h[qkey]["data_offsets"] = list(h[other]["data_offsets"][:1]) + [h[other]["data_offsets"][0] + (h[qkey]["data_offsets"][1] - h[qkey]["data_offsets"][0])]
    write(os.path.join(d, "model.safetensors"), h, body)

    d = case("wrong_shape")
    h = json.loads(json.dumps(header))
    r, c = h[qkey]["shape"]
    h[qkey]["shape"] = [r // 2, c * 2]
    write(os.path.join(d, "model.safetensors"), h, body)

    d = case("missing_tensor")
    h = json.loads(json.dumps(header))
    b0, e0 = h[qkey]["data_offsets"]
    del h[qkey]
    for k in h:
        if k != "__metadata__" and h[k]["data_offsets"][0] >= e0:
            h[k]["data_offsets"] = [h[k]["data_offsets"][0] - (e0 - b0), h[k]["data_offsets"][1] - (e0 - b0)]
    write(os.path.join(d, "model.safetensors"), h, body[:b0] + body[e0:])

    d = case("unknown_dtype")
    h = json.loads(json.dumps(header))
    h[qkey]["dtype"] = "F8_E4M3"
    write(os.path.join(d, "model.safetensors"), h, body)

    d = case("bytes_disagree_with_dtype")
    h = json.loads(json.dumps(header))
    h[qkey]["dtype"] = "F16"
    write(os.path.join(d, "model.safetensors"), h, body)

    d = case("config_disagrees")
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    cfg["intermediate_size"] += 8
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)

    d = case("config_not_json")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"hidden_size": 64,')

    d = case("config_missing_field")
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    del cfg["num_attention_heads"]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)

    d = case("config_heads_do_not_divide")
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    cfg["num_attention_heads"] = 5
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


if __name__ == "__main__":
    main()
