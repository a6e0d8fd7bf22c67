// Keys every transformers config.json may carry that say nothing about the network's arithmetic: training
// settings, generation and labelling metadata, and serialisation details (transformers configuration_utils.py,
// PretrainedConfig, across the 4.x and 5.x releases that wrote the checkpoints we read).
import Checkpoint

enum TransformersConfig {
    static let bookkeepingKeys = [
        "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "output_attentions",
        "output_hidden_states", "return_dict", "use_cache", "tie_word_embeddings", "chunk_size_feed_forward",
        "is_encoder_decoder", "id2label", "label2id", "problem_type", "tokenizer_class", "prefix", "bos_token_id",
        "eos_token_id", "sep_token_id", "pad_token_id", "decoder_start_token_id", "task_specific_params",
        "finetuning_task", "add_cross_attention", "tf_legacy_loss", "use_bfloat16", "pruned_heads", "torchscript",
        "is_decoder", "cross_attention_hidden_size", "name_or_path", "initializer_range",
    ]

    /// Settings that only matter while training (dropout, stochastic depth, loss weights).
    static let trainingKeys = [
        "hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate", "attention_dropout", "dropout",
        "initializer_factor",
    ]

    /// Marks the bookkeeping and training keys as read.
    static func ignoreBookkeeping(_ config: ConfigReader) {
        config.ignore(bookkeepingKeys + trainingKeys)
    }
}
