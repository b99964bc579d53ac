#!/bin/sh
# fetch_data.sh: fill data/ with the datasets (`make data`).
#
#   experiments/fetch_data.sh [NAME ...]      (default: sst2 agnews hatexplain eraser_movies imdb)
#
# For each dataset, in this order:
#   1. data/NAME already there: only verify it.
#   2. the shared copy ../shared/data/NAME exists: symlink data/NAME to it.
#   3. otherwise download every file from its public source (below, as in each
#      PROVENANCE.md: a repository pinned at a commit) into data/NAME.
# Then every file is checked against experiments/data.sha256; a mismatch is an error and a
# download that fails the check is not kept.  The planted task needs no data.
#
# Environment: ADAPLER_DATA (target folder, default data), ADAPLER_SHARED_DATA (default
# ../shared/data), ADAPLER_DATA_MIRROR (base URL instead of https://raw.githubusercontent.com;
# the tests point it at a local file:// mirror).
set -eu
cd "$(dirname "$0")/.."
DATA=${ADAPLER_DATA:-data}
SHARED=${ADAPLER_SHARED_DATA:-../shared/data}
RAW=${ADAPLER_DATA_MIRROR:-https://raw.githubusercontent.com}
MANIFEST=experiments/data.sha256
NAMES=${*:-sst2 agnews hatexplain eraser_movies imdb}

# name  file-in-data/NAME  repository  commit  path-in-repository  [gunzip]
SOURCES='
sst2 train.tsv eyalbd2/Reproducing-AutoPrompt 6288fb5bec9c572f2492875ae0111df5b6daed11 glue_data/SST-2/train_full.tsv
sst2 dev.tsv eyalbd2/Reproducing-AutoPrompt 6288fb5bec9c572f2492875ae0111df5b6daed11 glue_data/SST-2/dev.tsv
sst2 test.tsv eyalbd2/Reproducing-AutoPrompt 6288fb5bec9c572f2492875ae0111df5b6daed11 glue_data/SST-2/test.tsv
agnews test.csv Shane-Neeley/CharCnn_Keras 03c2f3cce18acc7a73a8aa38f687d4dc00db8f87 data/ag_news_csv/test.csv
agnews classes.txt Shane-Neeley/CharCnn_Keras 03c2f3cce18acc7a73a8aa38f687d4dc00db8f87 data/ag_news_csv/classes.txt
agnews readme.txt Shane-Neeley/CharCnn_Keras 03c2f3cce18acc7a73a8aa38f687d4dc00db8f87 data/ag_news_csv/readme.txt
agnews train_subset10k_desc_only.tsv forest-snow/alps 3c7ef2c98249fc975a897b27f275695f97d5b7a9 data/agnews/dev.tsv
hatexplain dataset.jsonl tringm/hate-speech-detection c837718ed12c8e2df5c34b01483263a25218e6a2 tests/data/hatexplain.ndjson.gz gunzip
hatexplain post_id_divisions.json hate-alert/HateXplain 01d742279dac941981f53806154481c0e15ee686 Data/post_id_divisions.json
eraser_movies train.jsonl marcodecandia/Tesi_ASDJ_de_Candia_Marcantonio c16a6d43aebeb9f1ee893e13b52e41c04e5e4b37 data/movies/train.jsonl
eraser_movies val.jsonl marcodecandia/Tesi_ASDJ_de_Candia_Marcantonio c16a6d43aebeb9f1ee893e13b52e41c04e5e4b37 data/movies/val.jsonl
eraser_movies test.jsonl marcodecandia/Tesi_ASDJ_de_Candia_Marcantonio c16a6d43aebeb9f1ee893e13b52e41c04e5e4b37 data/movies/test.jsonl
eraser_movies docs/* marcodecandia/Tesi_ASDJ_de_Candia_Marcantonio c16a6d43aebeb9f1ee893e13b52e41c04e5e4b37 data/movies/docs/*
imdb test500.csv ALjone/INF368-Final-Project 9121f2f23150fd8a6916a749a5ad8287d6945627 data/imdb/test.csv
imdb train100.csv ALjone/INF368-Final-Project 9121f2f23150fd8a6916a749a5ad8287d6945627 data/imdb/train_labeled_50.csv
'

die() { echo "make data: $*" >&2; exit 1; }

verify() { # verify DIR NAME: check DIR's files against the manifest lines of NAME
    lines=$(grep "  $2/" "$MANIFEST" | sed "s|  $2/|  |") || die "$2: not in $MANIFEST"
    if ! out=$(cd "$1" && printf '%s\n' "$lines" | sha256sum --quiet -c - 2>&1); then
        printf '%s\n' "$out" | head -5 >&2
        return 1
    fi
}

fetch() { # fetch URL DEST
    curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1" || die "cannot download $1"
}

download() { # download NAME into DIR (no pipelines: a failure must stop the script)
    name=$1 dir=$2
    printf '%s\n' "$SOURCES" > "$dir/.sources"
    while read -r n file repo commit path unzip; do
        [ "$n" = "$name" ] || continue
        case "$file" in
        docs/*) # one file per document listed in the manifest
            mkdir -p "$dir/docs"
            grep "  $name/docs/" "$MANIFEST" | sed "s|.*  $name/docs/||" > "$dir/.docs"
            while read -r doc; do
                fetch "$RAW/$repo/$commit/${path%\*}$doc" "$dir/docs/$doc"
            done < "$dir/.docs"
            rm -f "$dir/.docs" ;;
        *)
            if [ "${unzip:-}" = gunzip ]; then
                fetch "$RAW/$repo/$commit/$path" "$dir/$file.gz"
                gzip -dc "$dir/$file.gz" > "$dir/$file" || die "$dir/$file.gz: not gzip data"
                rm -f "$dir/$file.gz"
            else
                fetch "$RAW/$repo/$commit/$path" "$dir/$file"
            fi ;;
        esac
    done < "$dir/.sources"
    rm -f "$dir/.sources"
}

mkdir -p "$DATA"
for name in $NAMES; do
    grep -q "  $name/" "$MANIFEST" || die "unknown dataset '$name' (known: sst2 agnews hatexplain eraser_movies imdb)"
    dest="$DATA/$name"
    [ -L "$dest" ] && [ ! -e "$dest" ] && rm -f "$dest" # a link to a copy that moved
    if [ -e "$dest" ]; then
        how="present"
    elif [ -d "$SHARED/$name" ]; then
        ln -s "$(cd "$SHARED/$name" && pwd -P)" "$dest"
        how="linked to $(cd "$SHARED/$name" && pwd -P)"
    else
        part="$dest.part.$$"
        rm -rf "$part"
        mkdir -p "$part"
        trap 'rm -rf "$part"' EXIT
        echo "make data: $name: downloading from $RAW ..."
        download "$name" "$part"
        verify "$part" "$name" || die "$name: downloaded files do not match $MANIFEST"
        mv "$part" "$dest"
        trap - EXIT
        how="downloaded"
    fi
    verify "$dest" "$name" || die "$name: $dest does not match $MANIFEST (delete it and run make data again)"
    echo "make data: $name: $how, $(grep -c "  $name/" "$MANIFEST") files verified"
done
