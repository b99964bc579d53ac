/* cmd_results.c: `adapler results`: create or migrate a results database, merge shards
 * into one, print the embedded schema. */
#include <string.h>

#include "cli.h"
#include "common.h"
#include "results_db.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: adapler results merge SHARD.db... --into DB\n"
            "       adapler results init DB\n"
            "       adapler results schema\n\n"
            "The results database written by `adapler sweep` (schema: results/schema.sql).\n\n"
            "  merge   copy every run, model, cell, per-layer and per-example row and failure of the\n"
            "          shards into DB (created if needed), one transaction per shard.  Rows whose key\n"
            "          is already in DB are kept as they are, so merging a shard twice, or two shards\n"
            "          holding the same cell, gives one row.  Prints one line per shard.\n"
            "  init    create DB, or migrate it to this binary's schema version; prints the version\n"
            "  schema  print the schema this binary applies (results/schema.sql)\n");
}

int cmd_results(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "schema")) {
        fputs(results_db_schema_sql(), stdout);
        return 0;
    }
    if (!strcmp(sub, "init")) {
        if (argc != 3) {
            fprintf(stderr, "results init: expected one database path\n");
            return 2;
        }
        results_db db;
        int v = 0;
        if (results_db_open(&db, argv[2]) != ADP_OK || results_db_version(&db, &v) != ADP_OK) {
            fprintf(stderr, "results init: %s\n", adp_errmsg());
            if (db.db) results_db_close(&db);
            return 1;
        }
        results_db_close(&db);
        printf("{\"path\": \"%s\", \"schema_version\": %d}\n", argv[2], v);
        return 0;
    }
    if (strcmp(sub, "merge") != 0) {
        fprintf(stderr, "results: unknown subcommand '%s' (merge, init, schema)\n", sub);
        return 2;
    }
    const char *into = NULL;
    const char **shards = mallocCheck(sizeof(char *) * (size_t)argc);
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--into") && i + 1 < argc) into = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "results merge: unknown or incomplete option '%s'\n", argv[i]);
            free(shards);
            return 2;
        } else
            shards[n++] = argv[i];
    }
    if (!into || n == 0) {
        fprintf(stderr, "results merge: expected SHARD.db... --into DB\n");
        free(shards);
        return 2;
    }
    results_db db;
    if (results_db_open(&db, into) != ADP_OK) {
        fprintf(stderr, "results merge: %s\n", adp_errmsg());
        free(shards);
        return 1;
    }
    int rc = 0;
    long total_new = 0, total_dup = 0;
    for (int i = 0; i < n; i++) {
        long added = 0, dup = 0;
        if (results_db_merge(&db, shards[i], &added, &dup) != ADP_OK) {
            fprintf(stderr, "results merge: %s\n", adp_errmsg());
            rc = 1;
            continue;
        }
        total_new += added, total_dup += dup;
        printf("%s: %ld new cells, %ld already present\n", shards[i], added, dup);
    }
    printf("%s: %ld new cells from %d shards, %ld already present\n", into, total_new, n, total_dup);
    results_db_close(&db);
    free(shards);
    return rc;
}
