// Greedy token ids from llama.cpp for a prompt, as JSON: {"prompt": [...], "generated": [...]}.
//   greedy_ids MODEL.gguf N_PREDICT PROMPT [LORA.gguf]
// The prompt is tokenized as llama.cpp tokenizes a completion prompt (BOS when the vocabulary adds it, special
// tokens parsed); generation stops after N_PREDICT tokens or at an end-of-generation token. Part of Finch's
// llama.cpp parity tier (tools/llama_parity.sh); built against the libllama that script builds.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL N PROMPT [LORA]\n", argv[0]); return 2; }
    const char * path = argv[1];
    const int n_predict = atoi(argv[2]);
    const std::string prompt = argv[3];
    llama_log_set(quiet, nullptr);
    ggml_backend_load_all();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", path); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    int n = -llama_tokenize(vocab, prompt.data(), (int) prompt.size(), nullptr, 0, true, true);
    std::vector<llama_token> ids(n);
    if (llama_tokenize(vocab, prompt.data(), (int) prompt.size(), ids.data(), n, true, true) < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n + n_predict + 8;
    cp.n_batch = n;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    if (argc > 4) {
        llama_adapter_lora * lora = llama_adapter_lora_init(model, argv[4]);
        if (!lora) { fprintf(stderr, "cannot load adapter %s\n", argv[4]); return 1; }
        float scale = 1.0f;
        if (llama_set_adapters_lora(ctx, &lora, 1, &scale) != 0) { fprintf(stderr, "cannot apply adapter\n"); return 1; }
    }
    llama_sampler * greedy = llama_sampler_init_greedy();
    std::vector<llama_token> out;
    llama_batch batch = llama_batch_get_one(ids.data(), (int) ids.size());
    llama_token next;
    for (int i = 0; i < n_predict; i++) {
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        next = llama_sampler_sample(greedy, ctx, -1);
        out.push_back(next);
        if (llama_vocab_is_eog(vocab, next)) break;
        batch = llama_batch_get_one(&next, 1);
    }
    printf("{\"prompt\": [");
    for (size_t i = 0; i < ids.size(); i++) printf("%s%d", i ? ", " : "", ids[i]);
    printf("], \"generated\": [");
    for (size_t i = 0; i < out.size(); i++) printf("%s%d", i ? ", " : "", out[i]);
    printf("]}\n");
    llama_sampler_free(greedy);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
