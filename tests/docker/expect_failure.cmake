# Runs check_image.py mutate to write COPY (DOCKERFILE with one change), then
# check_image.py CHECK on COPY; passes when that check fails and its message
# matches the regular expression EXPECT. MUTATE and CHECK are argument lists
# joined by '|'.
string(REPLACE "|" ";" mutate_args "${MUTATE}")
string(REPLACE "|" ";" check_args "${CHECK}")
list(GET check_args 0 command)
list(REMOVE_AT check_args 0)
execute_process(COMMAND ${PYTHON} ${CHECKER} mutate --dockerfile ${DOCKERFILE} --output ${COPY}
                        ${mutate_args}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "could not write the changed copy: ${err}")
endif()
execute_process(COMMAND ${PYTHON} ${CHECKER} ${command} --dockerfile ${COPY} ${check_args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the check passed on ${COPY}; it should have failed")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "the check failed, but no message matches \"${EXPECT}\"")
endif()
