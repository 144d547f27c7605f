"""Shape rating models fitted on LIDC-IDRI outlines (see medseg_r.describe.shape).

Written by ``python -m medseg_r.benchmarks.describe_lidc --write-params``; do not edit by hand."""
PARAMETERS = {
    'models': {
        'sphericity': {
            'names': [
                'circularity',
                'solidity',
                'convexity',
                'elongation',
                'ellipse_residual',
                'spectrum_low',
                'spectrum_mid',
                'spectrum_high',
                'defects',
                'defect_depth',
                'spike_fraction',
            ],
            'mean': [
                0.7390411, 0.9342384, 0.9336451, 0.7712878, 0.1476999, 0.1797253, 0.05722812,
                0.01992424, 0.8138479, 0.191462, 0.03400223
            ],
            'scale': [
                0.113992, 0.0545396, 0.04429376, 0.1269252, 0.08412158, 0.09142552, 0.02396493,
                0.005529682, 1.211687, 0.1395461, 0.03051005
            ],
            'weights': [
                -0.4546857, -0.1558377, 0.2904081, 0.2023046, -0.2124469, -0.3436489,
                -0.04216966, -0.03052164, -0.05970282, 0.03591528, 0.07125154
            ],
            'bias': 3.770148,
            'cuts': [
                2.606679, 3.229926, 3.700124, 4.048174
            ],
        },
        'margin': {
            'names': [
                'circularity',
                'solidity',
                'convexity',
                'elongation',
                'ellipse_residual',
                'spectrum_low',
                'spectrum_mid',
                'spectrum_high',
                'defects',
                'defect_depth',
                'spike_fraction',
            ],
            'mean': [
                0.7390411, 0.9342384, 0.9336451, 0.7712878, 0.1476999, 0.1797253, 0.05722812,
                0.01992424, 0.8138479, 0.191462, 0.03400223
            ],
            'scale': [
                0.113992, 0.0545396, 0.04429376, 0.1269252, 0.08412158, 0.09142552, 0.02396493,
                0.005529682, 1.211687, 0.1395461, 0.03051005
            ],
            'weights': [
                -0.139724, 0.1215114, 0.1326856, 0.03498515, 0.04007618, -0.09871975,
                -0.1023489, -0.1423874, -0.07828903, -0.1610624, 0.1776919
            ],
            'bias': 3.816118,
            'cuts': [
                3.136602, 3.528285, 3.756601, 4.003917
            ],
        },
        'lobulation': {
            'names': [
                'circularity',
                'solidity',
                'convexity',
                'elongation',
                'ellipse_residual',
                'spectrum_low',
                'spectrum_mid',
                'spectrum_high',
                'defects',
                'defect_depth',
                'spike_fraction',
            ],
            'mean': [
                0.7390411, 0.9342384, 0.9336451, 0.7712878, 0.1476999, 0.1797253, 0.05722812,
                0.01992424, 0.8138479, 0.191462, 0.03400223
            ],
            'scale': [
                0.113992, 0.0545396, 0.04429376, 0.1269252, 0.08412158, 0.09142552, 0.02396493,
                0.005529682, 1.211687, 0.1395461, 0.03051005
            ],
            'weights': [
                -0.07359677, -0.1403053, -0.1997038, -0.1221364, 0.0567929, -0.1905554,
                -0.07087182, -0.03473718, 0.06712329, 0.1185064, -0.1520623
            ],
            'bias': 1.694665,
            'cuts': [
                1.641091, 1.909615, 2.2111, 2.679423
            ],
        },
        'spiculation': {
            'names': [
                'circularity',
                'solidity',
                'convexity',
                'elongation',
                'ellipse_residual',
                'spectrum_low',
                'spectrum_mid',
                'spectrum_high',
                'defects',
                'defect_depth',
                'spike_fraction',
            ],
            'mean': [
                0.7390411, 0.9342384, 0.9336451, 0.7712878, 0.1476999, 0.1797253, 0.05722812,
                0.01992424, 0.8138479, 0.191462, 0.03400223
            ],
            'scale': [
                0.113992, 0.0545396, 0.04429376, 0.1269252, 0.08412158, 0.09142552, 0.02396493,
                0.005529682, 1.211687, 0.1395461, 0.03051005
            ],
            'weights': [
                0.2094438, -0.3335505, -0.3593796, -0.04728616, 0.05633819, -0.04749053,
                -0.02023232, -0.0327821, 0.1270616, -0.0567849, -0.1352876
            ],
            'bias': 1.597049,
            'cuts': [
                1.602745, 1.912605, 2.201078, 2.628532
            ],
        },
    },
    'fitted_on': {
        'command': 'python -m medseg_r.benchmarks.describe_lidc --write-params',
        'annotations': 1762,
        'ridge': 1,
        'split': 'train half of the patients; nodules of the phantom test split left out',
    },
}
