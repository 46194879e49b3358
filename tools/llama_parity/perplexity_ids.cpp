// Perplexity from llama.cpp over given token ids, as JSON: {"chunks": C, "scored": N, "nll": mean, "ppl": exp(mean)}.
//   perplexity_ids MODEL.gguf IDS.txt CHUNK
// IDS.txt holds whitespace-separated token ids (tokenized by Finch, so both sides score the same tokens). They are cut
// into whole chunks of CHUNK ids; each chunk is decoded in a fresh context in one batch with logits at every position,
// and token i + 1 is scored from position i (CHUNK - 1 tokens a chunk). Log-softmax in double. Part of Finch's
// llama.cpp parity tier (tools/llama_parity.sh); built against the libllama that script builds.
#include "llama.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL IDS CHUNK\n", argv[0]); return 2; }
    const int chunk = atoi(argv[3]);
    std::vector<llama_token> ids;
    std::ifstream in(argv[2]);
    for (long v; in >> v;) ids.push_back((llama_token) v);
    const int chunks = chunk > 1 ? (int) ids.size() / chunk : 0;
    if (chunks == 0) { fprintf(stderr, "fewer than one chunk of %d ids in %s\n", chunk, argv[2]); return 1; }
    llama_log_set(quiet, nullptr);
    ggml_backend_load_all();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = chunk;
    cp.n_batch = chunk;
    cp.n_ubatch = chunk;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    double nll = 0;
    long scored = 0;
    for (int c = 0; c < chunks; c++) {
        llama_context * ctx = llama_init_from_model(model, cp);
        if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
        llama_batch batch = llama_batch_init(chunk, 0, 1);
        for (int i = 0; i < chunk; i++) {
            batch.token[i] = ids[(size_t) c * chunk + i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = chunk;
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        for (int i = 0; i + 1 < chunk; i++) {
            const float * row = llama_get_logits_ith(ctx, i);
            double mx = row[0];
            for (int v = 1; v < n_vocab; v++) mx = row[v] > mx ? row[v] : mx;
            double sum = 0;
            for (int v = 0; v < n_vocab; v++) sum += std::exp((double) row[v] - mx);
            nll += mx + std::log(sum) - row[batch.token[i + 1]];
            scored++;
        }
        llama_batch_free(batch);
        llama_free(ctx);
    }
    printf("{\"chunks\": %d, \"scored\": %ld, \"nll\": %.9f, \"ppl\": %.9f}\n", chunks, scored, nll / scored, std::exp(nll / scored));
    llama_model_free(model);
    return 0;
}
