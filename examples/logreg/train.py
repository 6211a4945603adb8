"""Train the ame-demo logistic regression (AME docs, "Validating models before deployment").

ame runs this as the `training` task with MLFLOW_TRACKING_URI and MLFLOW_RUN_ID
set, so the metric and the model land in the run ame tracks. The data is tiny
and made here: nothing is downloaded.
"""

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

X = np.array([-2, -1, 0, 1, 2, 1]).reshape(-1, 1)
y = np.array([0, 0, 1, 1, 1, 0])
lr = LogisticRegression()
lr.fit(X, y)
score = lr.score(X, y)
mlflow.log_metric("score", score)
mlflow.sklearn.log_model(
    lr,
    name="model",
    registered_model_name="logreg",
    signature=infer_signature(X.astype("float64"), lr.predict(X)),
    input_example=X[:2].astype("float64"),
)
print(f"Model saved in run {mlflow.active_run().info.run_id}")
