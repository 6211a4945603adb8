"""Train the product recommender of AME's "Models" docs.

The docs name the template `xgboost_resources`; the model here is
scikit-learn's histogram gradient boosting (the same family of model as
XGBoost) so the example installs in seconds and needs no GPU libraries. The
data is synthetic and made here: user and product features -> "bought".

ame runs this with MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and AME_MODEL_NAME set;
the model is logged in ame's run and registered under the model's name.
"""

import os

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

rng = np.random.default_rng(7)
n = 2000
user_age = rng.integers(18, 80, n)
user_visits = rng.poisson(5, n)
price = rng.uniform(1, 200, n)
category = rng.integers(0, 8, n)
logit = 0.04 * user_visits * 10 - 0.02 * price + 0.3 * (category == 3) - 0.01 * (user_age - 40)
bought = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
X = np.column_stack([user_age, user_visits, price, category]).astype("float64")

X_train, X_test, y_train, y_test = train_test_split(X, bought, test_size=0.25, random_state=7)
model = HistGradientBoostingClassifier(max_iter=50, random_state=7).fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
mlflow.log_params({"max_iter": 50, "n_samples": n})
mlflow.log_metric("accuracy", accuracy)
mlflow.sklearn.log_model(
    model,
    name="model",
    registered_model_name=os.environ.get("AME_MODEL_NAME", "product_recommendor"),
    signature=infer_signature(X_test, model.predict(X_test)),
    input_example=X_test[:3],
    # MLflow 3 saves scikit-learn models with skops, which loads only types
    # listed as trusted; the tree predictor of our own model is one.
    skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
)
print(f"product_recommendor accuracy {accuracy:.3f}")
