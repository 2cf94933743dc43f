"""Load forecasting for predictive scaling: pure numpy in, numpy out.

Never imports the service (`scaler`), grpc or httpx; the refresher calls it from a worker process.

    series = prepare(at_s, values, step_s=300, season_steps=288)
    forecaster = Forecaster()
    forecaster.fit(series)                      # in a worker, every few minutes
    forecaster.update(prepare(fine_at_s, fine_values, step_s=15))
    forecast = forecaster.forecast(horizon_steps=20, quantile=0.9)
"""

from forecasting.backtest import BacktestResult, Scores, backtest
from forecasting.base import Candidate, Forecast, ForecastConfig, MemberReport
from forecasting.conformal import DEFAULT_QUANTILE, newsvendor_quantile
from forecasting.ensemble import EnsembleFit, fit_ensemble
from forecasting.forecaster import Forecaster
from forecasting.models import ModelError
from forecasting.prepare import Series, prepare

__all__ = [
    "DEFAULT_QUANTILE",
    "BacktestResult",
    "Candidate",
    "EnsembleFit",
    "Forecast",
    "ForecastConfig",
    "Forecaster",
    "MemberReport",
    "ModelError",
    "Scores",
    "Series",
    "backtest",
    "fit_ensemble",
    "newsvendor_quantile",
    "prepare",
]
