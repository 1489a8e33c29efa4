# Trains a tiny model and exports it (ctest's examples.embed_model): the model file the
# embedding examples load.
execute_process(COMMAND ${TOOL} train --dim 32 --depth 1 --heads 2 --context 64 --seq-len 64 --batch 4
                        --steps 20 --builtin-bytes 20000 --sample 0 --threads 1 --out ${RUN} --force
                OUTPUT_QUIET RESULT_VARIABLE trained)
if(NOT trained EQUAL 0)
  message(FATAL_ERROR "training the examples' model failed (${trained})")
endif()
execute_process(COMMAND ${TOOL} export --run ${RUN} --out ${MODEL} RESULT_VARIABLE exported)
if(NOT exported EQUAL 0)
  message(FATAL_ERROR "exporting the examples' model failed (${exported})")
endif()
