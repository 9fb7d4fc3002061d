"""The Code assistant's core: prompts per mode and language, code extraction, syntax checks.

Nothing here runs generated code. The UI (``webui/code_tab.py``) joins these with the engine.
"""

from assist.code.check import CheckResult, available_checkers, check_code
from assist.code.extract import Extracted, answer_complete, clean_answer, extract_code, runaway
from assist.code.languages import LANGUAGES, CodeRequestError, Language, get_language, suggested_filename
from assist.code.prompts import MODES, CodeRequest, build_messages, default_params, params_for

__all__ = [
    "LANGUAGES",
    "MODES",
    "CheckResult",
    "CodeRequest",
    "CodeRequestError",
    "Extracted",
    "Language",
    "answer_complete",
    "available_checkers",
    "build_messages",
    "check_code",
    "clean_answer",
    "default_params",
    "extract_code",
    "get_language",
    "params_for",
    "runaway",
    "suggested_filename",
]
