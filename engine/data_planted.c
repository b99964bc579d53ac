/* data_planted.c: the planted-rationale task, generated, deterministic, needing no files.
 *
 * Each document has L words (L uniform in --planted-len MIN:MAX, 16..512, default 16:64).
 * Its label (negative 0 / positive 1) is drawn uniformly; then 1 to 3 distinct positions
 * (uniform) receive a cue word of that label, drawn uniformly from the label's four cues:
 *     negative: dreadful tedious lifeless dismal
 *     positive: superb delightful masterful radiant
 * Every other position holds a filler word drawn from real text: the 3,000 most frequent
 * words of SST-2's training sentences in proportion to their frequency
 * (engine/planted_words.c; cue words excluded), independent of the label.  So the label is
 * a function of the cue words alone, and the gold rationale is exactly those words: the
 * right answer for pruning (keep the cues) and for rationale metrics is known.
 * A tiny BERT learns it in a minute or two.
 *
 * Splits: --planted-n N documents for train (default 2,000), N/4 for dev and test, from
 * separate random streams: splitmix64 seeded with (--planted-seed, default 1) and the
 * split.  Ids: "planted-<split>-<index>". */
#include <string.h>

#include "common.h"
#include "data_internal.h"
#include "planted_words.h"

static const char *const PLANTED_LABELS[] = {"negative", "positive"};
static const char *const PLANTED_CUES[2][4] = {
    {"dreadful", "tedious", "lifeless", "dismal"},
    {"superb", "delightful", "masterful", "radiant"},
};

int data_load_planted(dataset *ds, const dataset_opts *o, split_id split) {
    if (o->planted_min < 16 || o->planted_max > 512 || o->planted_min > o->planted_max)
        return adp_seterr("planted: document length %d:%d outside 16..512", o->planted_min, o->planted_max);
    ds_set_labels(ds, PLANTED_LABELS, 2);
    uint64_t cum[PLANTED_N_FILLER], total = 0;
    for (int i = 0; i < PLANTED_N_FILLER; i++) cum[i] = total += (uint64_t)PLANTED_FILLER[i].count;
    uint64_t st = o->planted_seed * 0x9E3779B97F4A7C15ULL ^ (0xD1B54A32D192ED03ULL * (uint64_t)(split + 1));
    const char *tok[512];
    size_t tok_len[512];
    uint8_t flags[512];
    size_t n = o->planted_n[split];
    for (size_t d = 0; d < n; d++) {
        int len = o->planted_min + (int)(ds_rand(&st) % (uint64_t)(o->planted_max - o->planted_min + 1));
        int label = (int)(ds_rand(&st) % 2);
        int k = 1 + (int)(ds_rand(&st) % 3);
        memset(flags, 0, sizeof flags);
        for (int c = 0; c < k;) {
            int pos = (int)(ds_rand(&st) % (uint64_t)len);
            if (flags[pos]) continue;
            flags[pos] = 1;
            c++;
        }
        for (int i = 0; i < len; i++) {
            if (flags[i]) {
                tok[i] = PLANTED_CUES[label][ds_rand(&st) % 4];
            } else {
                uint64_t r = ds_rand(&st) % total;
                int lo = 0, hi = PLANTED_N_FILLER - 1; /* first i with cum[i] > r */
                while (lo < hi) {
                    int mid = (lo + hi) / 2;
                    if (cum[mid] > r) hi = mid;
                    else lo = mid + 1;
                }
                tok[i] = PLANTED_FILLER[lo].word;
            }
            tok_len[i] = strlen(tok[i]);
        }
        example *ex = ds_add(ds);
        uint8_t *wf = NULL;
        if (ds_text_from_tokens(ds, ex, tok, tok_len, (size_t)len, flags, 1, &wf) != ADP_OK) return ADP_ERR;
        ex->rationale = wf;
        ex->label = label;
        char id[64];
        snprintf(id, sizeof id, "planted-%s-%zu", split_name(split), d);
        ex->id = ds_strndup(ds, id, strlen(id));
        if (ds_finish(ds, ex, "planted", d + 1) != ADP_OK) return ADP_ERR;
    }
    return ADP_OK;
}
