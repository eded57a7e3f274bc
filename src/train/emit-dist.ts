/**
 * DeepSpeed ZeRO and accelerate (FSDP / DeepSpeed) configs for multi-GPU emitted jobs, the values the trainers'
 * own examples use with `auto` where HF TrainingArguments fill them in.
 */
import type { Distributed, EmitOptions } from './emit.ts';

export function deepspeedConfig(stage: 2 | 3): Record<string, unknown> {
  const common = {
    train_batch_size: 'auto',
    train_micro_batch_size_per_gpu: 'auto',
    gradient_accumulation_steps: 'auto',
    gradient_clipping: 'auto',
    zero_allow_untested_optimizer: true,
    bf16: { enabled: 'auto' },
    fp16: { enabled: 'auto' },
  };
  if (stage === 2) {
    return {
      ...common,
      zero_optimization: {
        stage: 2,
        allgather_partitions: true,
        allgather_bucket_size: 5e8,
        overlap_comm: true,
        reduce_scatter: true,
        reduce_bucket_size: 5e8,
        contiguous_gradients: true,
        round_robin_gradients: true,
      },
    };
  }
  return {
    ...common,
    zero_optimization: {
      stage: 3,
      overlap_comm: true,
      contiguous_gradients: true,
      sub_group_size: 1e9,
      reduce_bucket_size: 'auto',
      stage3_prefetch_bucket_size: 'auto',
      stage3_param_persistence_threshold: 'auto',
      stage3_max_live_parameters: 1e9,
      stage3_max_reuse_distance: 1e9,
      stage3_gather_16bit_weights_on_model_save: true,
    },
  };
}

export function accelerateConfig(o: EmitOptions, dist: Distributed, dsFile?: string): Record<string, unknown> {
  const base = {
    compute_environment: 'LOCAL_MACHINE',
    machine_rank: 0,
    main_training_function: 'main',
    mixed_precision: 'bf16',
    num_machines: o.nodes,
    num_processes: o.nodes * o.gpus,
    rdzv_backend: 'static',
    same_network: true,
    use_cpu: false,
  };
  if (dist === 'fsdp') {
    return {
      ...base,
      distributed_type: 'FSDP',
      fsdp_config: {
        fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP',
        fsdp_backward_prefetch: 'BACKWARD_PRE',
        fsdp_cpu_ram_efficient_loading: true,
        fsdp_offload_params: false,
        fsdp_sharding_strategy: 'FULL_SHARD',
        fsdp_state_dict_type: 'SHARDED_STATE_DICT',
        fsdp_sync_module_states: true,
        fsdp_use_orig_params: true,
      },
    };
  }
  return { ...base, distributed_type: 'DEEPSPEED', deepspeed_config: { deepspeed_config_file: dsFile } };
}
