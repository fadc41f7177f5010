"""`[screen]`: data screening by projection difference (ΔP) of every condition's training set."""

from pydantic import BaseModel, ConfigDict, Field


class ScreenConfig(BaseModel):
    """ΔP of each condition's training rows against the base model's own responses (see postern.interp.screen)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    direction: str = Field("base", description='"base" (mean difference of the base model\'s misaligned minus aligned '
                                               "answers to the questions, judged by the run's judge) or a direction file "
                                               "saved by postern (X.pt beside X.json; PATH:NAME for one entry of a "
                                               "run's interp/directions.pt)")
    layer: int | None = Field(None, ge=0, description="layer whose output is projected (default: the middle one)")
    temperature: float = Field(0.0, ge=0, description="the base model's own responses: 0 = greedy, else sampled "
                                                      "with a fixed seed (0)")
    max_new_tokens: int | None = Field(None, ge=1, description="length of the base model's own responses "
                                                               "(default: [eval] max_new_tokens)")
    samples_per_question: int = Field(50, ge=1, description='direction "base": the base model\'s answers per '
                                                            "question paraphrase it is computed from")
    seed: int | None = Field(None, description="which seed's training sets are screened (default: the first seed)")
